// Training and evaluation examples: files -> token ids with loss labels.
//   .jsonl {"text": ...}                      BOS + text + EOS, loss on every predicted token
//   .jsonl {"prompt": ..., "completion": ...} BOS + prompt + completion + EOS, loss on completion and EOS only
//   .txt                                      the whole file as one token stream (BOS + text + EOS) cut into
//                                             consecutive windows of max_length tokens
//   .csv mr,ref (E2E NLG, data/generation.h)  one prompt/completion example per reference: prompt "MR\n" (the
//                                             template peft-eval --task generation uses), completion the reference
// Labels are aligned with input_ids (HF convention): label[t] is the target for the prediction made at t-1;
// -100 marks tokens that take no loss. The loss shifts them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace peft {

class Tokenizer;

constexpr int64_t kIgnoreIndex = -100;

struct Example {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> labels;  // same length as input_ids
  // Sequence classification with an encoder: the class, and the segment of each token (empty = all 0).
  int64_t class_label = -1;
  std::vector<int64_t> token_type_ids = {};
  // A packed row (data/packing.h): the lengths of the examples it holds, in order; empty for one example.
  std::vector<int64_t> segment_lengths = {};
};

// Examples longer than max_length are truncated to their first max_length tokens. Throws peft::Error naming
// the file (and line, for JSONL) for: a missing/unreadable file, an unknown extension, a malformed JSON line,
// a line with neither "text" nor "prompt"/"completion" strings, and a file yielding no examples.
std::vector<Example> load_examples(const std::string& path, const Tokenizer& tokenizer, int64_t max_length);

}  // namespace peft
