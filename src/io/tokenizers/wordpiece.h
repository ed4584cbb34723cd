// WordPiece, BERT's tokenizer, as Hugging Face's tokenizers run it: added tokens ([CLS], [SEP], ...) split out of
// the raw text; BertNormalizer (drop control characters and turn whitespace into spaces, pad CJK ideographs with
// spaces, strip accents by NFD + dropping non-spacing marks, lowercase); BertPreTokenizer (split on whitespace,
// every punctuation character its own word); then per word the longest vocabulary piece first, continuations
// prefixed "##", and the unknown token for a word that cannot be covered or is longer than
// max_input_chars_per_word. encode() gives plain ids; [CLS]/[SEP] are the caller's (classification inputs).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "io/tokenizer.h"
#include "io/tokenizers/added_tokens.h"

namespace peft {

struct WordPieceSpec {
  std::string source;
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  int64_t max_input_chars_per_word = 100;
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;  // tokenizer.json's null means "as lowercase"
  bool lowercase = true;
  std::vector<AddedToken> added;
};

class WordPieceTokenizer : public Tokenizer {
 public:
  // Throws peft::Error naming spec.source when the unknown token is not in the vocabulary.
  explicit WordPieceTokenizer(WordPieceSpec spec);

  std::vector<int64_t> encode(const std::string& text) const override;
  // Tokens joined by spaces, continuations glued to the previous token; special tokens left out.
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  int64_t token_id(const std::string& token) const override;

 private:
  std::vector<char32_t> normalise(std::string_view text) const;
  void encode_word(const std::vector<char32_t>& word, std::vector<int64_t>& out) const;

  WordPieceSpec spec_;
  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> tokens_;
  std::vector<bool> special_;
  int64_t unk_id_ = 0;
  int64_t vocab_size_ = 0;
  AddedTokens added_;
};

}  // namespace peft
