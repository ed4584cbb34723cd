// Classification as text, for causal language models (rank classification, as T-Few and the (IA)³ paper
// evaluate): each example becomes a prompt from a template, and each label a verbaliser, the words the model
// should continue the prompt with. Training scores the true label's words; evaluation scores every label's words
// and picks the one with the highest length-normalised log-likelihood.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/classification.h"
#include "data/dataset.h"

namespace peft {

class Tokenizer;

struct Verbalizer {
  // Placeholders {text} (= {text_a}), {text_a} and {text_b} are replaced by the example's fields.
  std::string template_text;
  std::vector<std::string> label_words;  // one per label, in label order

  // The defaults when a config gives none: "{text}\nAnswer:" ("{text_a}\n{text_b}\nAnswer:" for pairs) and
  // " " + each label name.
  static Verbalizer defaults(const ClassificationSet& set);
  std::string prompt(const ClassificationExample& example) const;
};

// Throws peft::Error when the verbaliser does not fit the data: a number of label words other than the number of
// labels, an empty or repeated label word, a template with an unknown placeholder or without the text (for pairs,
// both texts). `where` prefixes the message ("data.verbalizers").
void check_verbalizer(const Verbalizer& verbalizer, const ClassificationSet& set, const std::string& where);

// Training examples: BOS + prompt (no loss) + the true label's words (loss). A prompt too long for max_length
// loses its beginning, so that the template's closing cue and the label words stay.
std::vector<Example> verbalized_examples(const ClassificationSet& set, const Verbalizer& verbalizer,
                                         const Tokenizer& tokenizer, int64_t max_length);

// Evaluation candidates: for example i and label k, candidates[i * num_labels + k] scores label k's words.
std::vector<Example> verbalized_candidates(const ClassificationSet& set, const Verbalizer& verbalizer,
                                           const Tokenizer& tokenizer, int64_t max_length);

}  // namespace peft
