// Classification inputs for encoders, as HF's tokenizers build them: BERT [CLS] a [SEP] (b [SEP]) with token
// types 0 then 1; RoBERTa <s> a </s> (</s> b </s>), all type 0. The example's class is its label.
#pragma once

#include <cstdint>
#include <vector>

#include "data/classification.h"
#include "data/dataset.h"

namespace peft {

class Tokenizer;
struct ModelConfig;

struct EncoderSpecialTokens {
  int64_t cls = -1, sep = -1;
  bool roberta = false;  // pairs joined by two separators, no second token type
};

// Looks the family's tokens up in the tokenizer: [CLS]/[SEP] for BERT, <s>/</s> for RoBERTa, the tokenizer's BOS /
// EOS (RoBERTa's layout) for a TorchScript module of unknown architecture. Throws peft::Error
// naming the tokenizer's location when they are missing.
EncoderSpecialTokens encoder_special_tokens(const Tokenizer& tokenizer, const ModelConfig& config,
                                            const std::string& location);

// Over-long inputs are cut to max_length by removing tokens from the end of the longer text first (HF's
// "longest_first" truncation); the special tokens always stay.
std::vector<Example> encoder_examples(const ClassificationSet& set, const Tokenizer& tokenizer,
                                      const EncoderSpecialTokens& special, int64_t max_length);

}  // namespace peft
