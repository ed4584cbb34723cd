#include "io/tokenizers/wordpiece.h"

#include <cstring>

#include "core/error.h"
#include "io/tokenizers/unicode.h"

namespace peft {
namespace {

// Rust's char::is_whitespace (the White_Space property), which Hugging Face's BERT normaliser and pre-tokenizer use.
bool is_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Category "other" (Cc, Cf, Cn, Co, Cs), except the three whitespace controls.
bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  return unicode::category(c)[0] == 'C';
}

bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return unicode::category(c)[0] == 'P';
}

bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(WordPieceSpec spec) : spec_(std::move(spec)), added_(spec_.added) {
  for (const auto& [token, id] : spec_.vocab) {
    check(id >= 0, spec_.source + ": token '" + token + "' has a negative id");
    vocab_size_ = std::max(vocab_size_, id + 1);
  }
  for (const auto& token : spec_.added) vocab_size_ = std::max(vocab_size_, token.id + 1);
  tokens_.resize(static_cast<size_t>(vocab_size_));
  special_.assign(static_cast<size_t>(vocab_size_), false);
  for (const auto& [token, id] : spec_.vocab) {
    tokens_[static_cast<size_t>(id)] = token;
    vocab_.emplace(token, id);
  }
  for (const auto& token : spec_.added) {
    tokens_[static_cast<size_t>(token.id)] = token.content;
    special_[static_cast<size_t>(token.id)] = token.special;
  }
  auto unk = vocab_.find(spec_.unk_token);
  check(unk != vocab_.end(), spec_.source + ": the unknown token '" + spec_.unk_token + "' is not in the vocabulary");
  unk_id_ = unk->second;
  spec_.vocab.clear();
}

int64_t WordPieceTokenizer::token_id(const std::string& token) const {
  int64_t added = added_.find(token);
  if (added >= 0) return added;
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

std::vector<char32_t> WordPieceTokenizer::normalise(std::string_view text) const {
  std::vector<char32_t> out;
  for (char32_t c : unicode::decode(text)) {
    if (spec_.clean_text) {
      if (c == 0 || c == 0xFFFD || is_control(c)) continue;
      if (is_whitespace(c)) c = ' ';
    }
    if (spec_.handle_chinese_chars && is_cjk(c)) {
      out.insert(out.end(), {U' ', c, U' '});
    } else {
      out.push_back(c);
    }
  }
  if (spec_.strip_accents) {
    std::vector<char32_t> stripped;
    for (char32_t c : unicode::decode(unicode::nfd(unicode::encode(out)))) {
      if (!unicode::is_nonspacing_mark(c)) stripped.push_back(c);
    }
    out = std::move(stripped);
  }
  if (spec_.lowercase) {
    for (char32_t& c : out) c = unicode::to_lower(c);
  }
  return out;
}

void WordPieceTokenizer::encode_word(const std::vector<char32_t>& word, std::vector<int64_t>& out) const {
  if (static_cast<int64_t>(word.size()) > spec_.max_input_chars_per_word) {
    out.push_back(unk_id_);
    return;
  }
  std::vector<int64_t> pieces;
  size_t start = 0;
  while (start < word.size()) {
    int64_t found = -1;
    size_t end = word.size();
    for (; end > start; --end) {
      std::string piece = start > 0 ? spec_.continuing_subword_prefix : std::string();
      for (size_t i = start; i < end; ++i) unicode::append(piece, word[i]);
      auto it = vocab_.find(piece);
      if (it != vocab_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {  // no piece covers this position: the whole word is unknown
      out.push_back(unk_id_);
      return;
    }
    pieces.push_back(found);
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
}

std::vector<int64_t> WordPieceTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& segment : added_.split(text)) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    std::vector<char32_t> word;
    for (char32_t c : normalise(segment.text)) {
      bool space = is_whitespace(c);
      if (space || is_punctuation(c)) {
        if (!word.empty()) encode_word(word, ids);
        word.clear();
        if (!space) encode_word({c}, ids);
      } else {
        word.push_back(c);
      }
    }
    if (!word.empty()) encode_word(word, ids);
  }
  return ids;
}

std::string WordPieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  const std::string& prefix = spec_.continuing_subword_prefix;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size_ || special_[static_cast<size_t>(id)]) continue;
    const std::string& token = tokens_[static_cast<size_t>(id)];
    if (!prefix.empty() && token.compare(0, prefix.size(), prefix) == 0) {
      out += token.substr(prefix.size());
    } else {
      if (!out.empty()) out += ' ';
      out += token;
    }
  }
  return out;
}

}  // namespace peft
