// Byte-level BPE, the tokenizer of GPT-2, Llama 3 and Qwen2/3, as Hugging Face's tokenizers run it: added tokens
// are split out of the raw text first; the rest is optionally NFC-normalised, split by the pre-tokenizer regex
// (every match and every gap between matches is a word), each word's UTF-8 bytes are mapped to GPT-2's printable
// byte alphabet, and merges apply lowest rank first until none does. Decoding maps the alphabet back to bytes
// (invalid UTF-8 becomes U+FFFD) and leaves special tokens out.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "io/tokenizer.h"
#include "io/tokenizers/added_tokens.h"

namespace peft {

// GPT-2's pre-tokenizer regex (the ByteLevel pre-tokenizer's use_regex: true).
extern const char* const kGpt2Pattern;

struct ByteLevelBpeSpec {
  std::string source;                                       // the file(s), for messages
  std::vector<std::pair<std::string, int64_t>> vocab;       // token in the byte alphabet -> id
  std::vector<std::pair<std::string, std::string>> merges;  // rank order
  std::string pattern;                                      // empty: the whole text is one word
  bool nfc = false;
  bool add_prefix_space = false;
  bool ignore_merges = false;  // a word that is itself in the vocabulary is that token (Llama 3)
  std::vector<AddedToken> added;
};

class ByteLevelBpeTokenizer : public Tokenizer {
 public:
  // Throws peft::Error naming spec.source for an invalid regex, a merge of unknown tokens, or a byte missing from
  // the vocabulary.
  explicit ByteLevelBpeTokenizer(ByteLevelBpeSpec spec);
  ~ByteLevelBpeTokenizer() override;

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  // The id of a token (added or not), or -1.
  int64_t token_id(const std::string& token) const override;

 private:
  void encode_word(std::string_view word, std::vector<int64_t>& out) const;
  void merge(std::vector<int64_t>& ids) const;

  std::string source_;
  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> tokens_;                                   // id -> token (byte alphabet or added text)
  std::vector<bool> special_;                                         // id -> left out when decoding
  std::vector<bool> added_text_;                                      // id -> an added token, whose text is itself
  std::unordered_map<uint64_t, std::pair<int32_t, int64_t>> merges_;  // (left, right) -> (rank, merged id)
  int64_t byte_ids_[256] = {};
  std::string byte_chars_[256];  // byte -> its character in the byte alphabet, UTF-8
  std::unordered_map<char32_t, uint8_t> char_bytes_;
  bool nfc_ = false, add_prefix_space_ = false, ignore_merges_ = false;
  AddedTokens added_;
  int64_t vocab_size_ = 0;

  struct Regex;
  std::unique_ptr<Regex> regex_;

  // Words seen before (text repeats the same words); bounded.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace peft
