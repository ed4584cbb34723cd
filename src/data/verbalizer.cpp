#include "data/verbalizer.h"

#include <set>

#include "core/error.h"
#include "io/tokenizer.h"

namespace peft {
namespace {

const std::vector<std::string> kPlaceholders = {"{text}", "{text_a}", "{text_b}"};

// The template's placeholders in order of appearance; anything in braces that is not one is an error.
std::vector<std::string> placeholders(const std::string& text, const std::string& where) {
  std::vector<std::string> found;
  for (size_t open = text.find('{'); open != std::string::npos; open = text.find('{', open + 1)) {
    size_t close = text.find('}', open);
    check(close != std::string::npos, where + ": template has an unclosed '{'");
    std::string name = text.substr(open, close - open + 1);
    check(std::find(kPlaceholders.begin(), kPlaceholders.end(), name) != kPlaceholders.end(),
          where + ": unknown placeholder " + name + " in the template (use {text}, {text_a}, {text_b})");
    found.push_back(name);
  }
  return found;
}

Example with_label_words(std::vector<int64_t> prompt, const std::vector<int64_t>& words, const Tokenizer& tokenizer,
                         int64_t max_length) {
  int64_t room = max_length - 1 - static_cast<int64_t>(words.size());
  if (static_cast<int64_t>(prompt.size()) > room) {
    prompt.erase(prompt.begin(), prompt.end() - std::max<int64_t>(room, 0));
  }
  Example example;
  example.input_ids = {tokenizer.bos_id()};
  example.labels = {kIgnoreIndex};
  example.input_ids.insert(example.input_ids.end(), prompt.begin(), prompt.end());
  example.labels.insert(example.labels.end(), prompt.size(), kIgnoreIndex);
  example.input_ids.insert(example.input_ids.end(), words.begin(), words.end());
  example.labels.insert(example.labels.end(), words.begin(), words.end());
  return example;
}

std::vector<std::vector<int64_t>> encode_words(const Verbalizer& verbalizer, const Tokenizer& tokenizer,
                                               int64_t max_length) {
  std::vector<std::vector<int64_t>> words;
  for (const auto& text : verbalizer.label_words) {
    words.push_back(tokenizer.encode(text));
    check(!words.back().empty(), "label word '" + text + "' encodes to no tokens");
    check(static_cast<int64_t>(words.back().size()) < max_length - 1,
          "label word '" + text + "' does not fit max_length " + std::to_string(max_length));
  }
  return words;
}

}  // namespace

Verbalizer Verbalizer::defaults(const ClassificationSet& set) {
  Verbalizer verbalizer;
  verbalizer.template_text = set.pairs ? "{text_a}\n{text_b}\nAnswer:" : "{text}\nAnswer:";
  for (const auto& name : set.label_names) verbalizer.label_words.push_back(" " + name);
  return verbalizer;
}

std::string Verbalizer::prompt(const ClassificationExample& example) const {
  std::string out;
  size_t position = 0;
  while (position < template_text.size()) {
    size_t open = template_text.find('{', position);
    if (open == std::string::npos) break;
    size_t close = template_text.find('}', open);
    if (close == std::string::npos) break;
    out += template_text.substr(position, open - position);
    std::string name = template_text.substr(open, close - open + 1);
    out += name == "{text_b}" ? example.text_b : example.text_a;
    position = close + 1;
  }
  return out + template_text.substr(std::min(position, template_text.size()));
}

void check_verbalizer(const Verbalizer& verbalizer, const ClassificationSet& set, const std::string& where) {
  check(
      verbalizer.label_words.size() == set.label_names.size(),
      where + ": " + std::to_string(verbalizer.label_words.size()) + " label word(s) for " +
          std::to_string(set.label_names.size()) + " labels (one per label, in the order " +
          [&] {
            std::string names;
            for (const auto& name : set.label_names) names += (names.empty() ? "" : ", ") + name;
            return names;
          }() +
          ")");
  std::set<std::string> seen;
  for (const auto& word : verbalizer.label_words) {
    check(!word.empty(), where + ": a label word is empty");
    check(seen.insert(word).second, where + ": label word '" + word + "' is given twice");
  }
  auto used = placeholders(verbalizer.template_text, where);
  auto has = [&](const std::string& name) { return std::find(used.begin(), used.end(), name) != used.end(); };
  check(has("{text}") || has("{text_a}"), where + ": the template must contain {text} (or {text_a})");
  if (set.pairs) check(has("{text_b}"), where + ": this data set has text pairs; the template must contain {text_b}");
}

std::vector<Example> verbalized_examples(const ClassificationSet& set, const Verbalizer& verbalizer,
                                         const Tokenizer& tokenizer, int64_t max_length) {
  auto words = encode_words(verbalizer, tokenizer, max_length);
  std::vector<Example> examples;
  examples.reserve(set.examples.size());
  for (const auto& example : set.examples) {
    examples.push_back(with_label_words(tokenizer.encode(verbalizer.prompt(example)),
                                        words[static_cast<size_t>(example.label)], tokenizer, max_length));
  }
  return examples;
}

std::vector<Example> verbalized_candidates(const ClassificationSet& set, const Verbalizer& verbalizer,
                                           const Tokenizer& tokenizer, int64_t max_length) {
  auto words = encode_words(verbalizer, tokenizer, max_length);
  std::vector<Example> candidates;
  candidates.reserve(set.examples.size() * words.size());
  for (const auto& example : set.examples) {
    auto prompt = tokenizer.encode(verbalizer.prompt(example));
    for (const auto& label_words : words)
      candidates.push_back(with_label_words(prompt, label_words, tokenizer, max_length));
  }
  return candidates;
}

}  // namespace peft
