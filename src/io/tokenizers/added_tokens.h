// Added tokens of a tokenizer.json (special tokens such as <|endoftext|> or [CLS]): matched in the raw text
// before anything else, as Hugging Face's tokenizers do, so a special token written literally in the text is
// that token. Matching is leftmost, longest first; lstrip / rstrip let a token absorb the whitespace beside it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace peft {

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
};

// A piece of the text: either plain text for the model (id < 0) or one added token.
struct TextSegment {
  std::string_view text;
  int64_t id = -1;
};

class AddedTokens {
 public:
  AddedTokens() = default;
  explicit AddedTokens(std::vector<AddedToken> tokens);

  std::vector<TextSegment> split(std::string_view text) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  // The id of `content`, or -1.
  int64_t find(std::string_view content) const;

 private:
  std::vector<AddedToken> tokens_;  // longest first
  bool first_byte_[256] = {};       // bytes some token starts with: most positions are rejected at once
};

}  // namespace peft
