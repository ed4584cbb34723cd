// Training and evaluation examples: files -> token ids with loss labels.
//   .jsonl {"text": ...}                      BOS + text + EOS, loss on every predicted token
//   .jsonl {"prompt": ..., "completion": ...} BOS + prompt + completion + EOS, loss on completion and EOS only
//   .jsonl {"messages": [...]}                a conversation rendered with the chat template (data/chat.h), loss
//                                             on the assistant's turns with their end-of-turn marker; prompt and
//                                             completion may also be lists of messages (loss on the completion's)
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
class ChatFormat;

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

// Conversations: the chat template they are rendered with (none: a "messages" record is an error saying so) and
// whether the loss covers every token (data.train_on: all) or the assistant's turns only.
struct ChatOptions {
  const ChatFormat* format = nullptr;
  bool all_tokens = false;
  std::string unavailable = {};  // why there is no format (a model template that does not parse), for the error
};

// Examples longer than max_length are truncated to their first max_length tokens. Throws peft::Error naming
// the file (and line, for JSONL) for: a missing/unreadable file, an unknown extension, a malformed JSON line,
// a line with neither "text" nor "prompt"/"completion" strings nor "messages", a conversation the template
// rejects, and a file yielding no examples.
std::vector<Example> load_examples(const std::string& path, const Tokenizer& tokenizer, int64_t max_length,
                                   const ChatOptions& chat = {});

}  // namespace peft
