// Generation tasks: a source per example (what the model is prompted with) and one or more reference outputs.
//   .csv with header mr,ref (E2E NLG): rows sharing a meaning representation are one example with several
//        references, in file order; the source is the MR
//   .jsonl {"prompt": ..., "references": [...]} or {"prompt": ..., "completion": ...} (one reference)
// The prompt given to the model is the template with {source} replaced.
#pragma once

#include <string>
#include <vector>

namespace peft {

struct GenerationExample {
  std::string source;
  std::vector<std::string> references;
};

struct GenerationSet {
  std::vector<GenerationExample> examples;
  std::string format;  // "e2e" or "jsonl"
};

// Throws peft::Error naming the file and line for: a missing file, an unknown extension, a CSV without the mr,ref
// header or with a row of another field count or an unterminated quote, a JSONL line that is not an object with a
// "prompt" string and "references" (strings) or "completion", and a file with no examples.
GenerationSet load_generation_set(const std::string& path);

// The template a format is prompted with by default: E2E "{source}\n", JSONL "{source}".
std::string default_generation_template(const GenerationSet& set);

// `template_text` with every {source} replaced.
std::string generation_prompt(const std::string& template_text, const GenerationExample& example);

}  // namespace peft
