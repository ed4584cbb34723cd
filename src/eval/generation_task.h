// Evaluation of a generation task: each example's prompt is generated from (batched), the output is cut at the
// first stop string, and the outputs are scored against the references (BLEU, ROUGE-L, exact match).
#pragma once

#include <string>
#include <vector>

#include "data/generation.h"
#include "eval/generate.h"
#include "eval/text_metrics.h"

namespace peft {

class CausalLM;
class ChatFormat;
class Tokenizer;

struct GenerationReport {
  std::vector<std::string> outputs;  // one per example
  // Per example, for the FLOP count: the prompt's tokens and the tokens generated (EOS included).
  std::vector<int64_t> prompt_tokens, generated_tokens;
  BleuScore bleu;
  double rouge_l = 0.0;
  double exact_match = 0.0;
};

// With `chat`, each filled-in template is a user turn rendered with the chat template's generation prompt (no BOS
// added: the template writes it); options.eos_id should then be the template's end of turn.
GenerationReport evaluate_generation(CausalLM& model, const Tokenizer& tokenizer, const GenerationSet& set,
                                     const std::string& template_text, const std::vector<std::string>& stop,
                                     const GenerationOptions& options, int64_t batch_size,
                                     const ChatFormat* chat = nullptr);

// One line: "BLEU 12.34 (58.1/20.3/8.2/3.1, BP 0.912) | ROUGE-L 0.3456 | exact match 0.0000 (630 examples)".
std::string format_report(const GenerationReport& report);

}  // namespace peft
