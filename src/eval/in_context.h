// In-context learning (ICL), the baseline PEFT is measured against: K demonstrations drawn reproducibly from a
// training file go before each held-out input, unscored; the model is not trained. The same K demonstrations serve
// every held-out example. One template per data format, each demonstration followed by a blank line:
//   language modelling, prompt/completion (JSONL, E2E CSV)  prompt + completion
//   language modelling, text (JSONL text, .txt windows)      the text (a window of the training stream)
//   classification (rank classification)                    the template filled in, then the true label's words
//   generation                                              the template filled in, then the first reference
// Token-level formats take each demonstration's own tokens (its training example without BOS and EOS).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/generation.h"

namespace peft {

class Tokenizer;

constexpr const char* kDemonstrationSeparator = "\n\n";

// `shots` distinct indices into [0, available), drawn with a seeded generator: the same seed, the same draw. Throws
// peft::Error naming `file` when it has fewer than `shots` examples.
std::vector<size_t> draw_demonstrations(size_t available, int64_t shots, uint64_t seed, const std::string& file);

// The drawn examples' tokens without BOS and EOS, each followed by the separator's tokens.
std::vector<int64_t> demonstration_tokens(const std::vector<Example>& train, const std::vector<size_t>& drawn,
                                          const Tokenizer& tokenizer);

// Each example with the demonstrations after its BOS (a window that has none gets one first), unscored. Throws
// peft::Error when the longest result exceeds `context` tokens, saying how many the demonstrations take; `what`
// names the setting in that message (e.g. "--icl-shots 16").
std::vector<Example> with_demonstrations(const std::vector<Example>& examples,
                                         const std::vector<int64_t>& demonstrations, int64_t bos_id, int64_t context,
                                         const std::string& what);

// Generation: the demonstrations as text, to go before each prompt.
std::string generation_demonstrations(const GenerationSet& train, const std::vector<size_t>& drawn,
                                      const std::string& template_text);

}  // namespace peft
