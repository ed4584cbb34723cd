#include "io/tokenizers/byte_level_bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <limits>

#include "core/error.h"
#include "io/tokenizers/unicode.h"

namespace peft {

const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the others (controls, space, ...) take
// the code points from 256 upwards in byte order.
std::vector<char32_t> byte_alphabet() {
  std::vector<char32_t> alphabet(256);
  auto printable = [](int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); };
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) alphabet[static_cast<size_t>(b)] = printable(b) ? static_cast<char32_t>(b) : next++;
  return alphabet;
}

uint64_t pair_key(int64_t left, int64_t right) {
  return (static_cast<uint64_t>(left) << 32) | static_cast<uint64_t>(right);
}

constexpr size_t kCacheLimit = 1 << 18;

}  // namespace

// The compiled pre-tokenizer regex (PCRE2 in UTF + Unicode-property mode, JIT-compiled when available).
struct ByteLevelBpeTokenizer::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(ByteLevelBpeSpec spec)
    : source_(std::move(spec.source)),
      nfc_(spec.nfc),
      add_prefix_space_(spec.add_prefix_space),
      ignore_merges_(spec.ignore_merges),
      added_(spec.added) {
  for (auto& [token, id] : spec.vocab) {
    check(id >= 0 && id < std::numeric_limits<int32_t>::max(),
          source_ + ": token '" + token + "' has id " + std::to_string(id) + ", outside [0, 2^31)");
    vocab_size_ = std::max(vocab_size_, id + 1);
  }
  for (const auto& token : spec.added) vocab_size_ = std::max(vocab_size_, token.id + 1);
  tokens_.resize(static_cast<size_t>(vocab_size_));
  special_.assign(static_cast<size_t>(vocab_size_), false);
  added_text_.assign(static_cast<size_t>(vocab_size_), false);
  for (auto& [token, id] : spec.vocab) {
    tokens_[static_cast<size_t>(id)] = token;
    vocab_.emplace(std::move(token), id);
  }
  for (const auto& token : spec.added) {
    tokens_[static_cast<size_t>(token.id)] = token.content;
    special_[static_cast<size_t>(token.id)] = token.special;
    added_text_[static_cast<size_t>(token.id)] = true;
  }

  auto alphabet = byte_alphabet();
  for (int b = 0; b < 256; ++b) {
    std::string character;
    unicode::append(character, alphabet[static_cast<size_t>(b)]);
    auto it = vocab_.find(character);
    check(it != vocab_.end(), source_ + ": the vocabulary lacks the byte-level token for byte " + std::to_string(b) +
                                  " (is this a byte-level BPE tokenizer?)");
    byte_ids_[b] = it->second;
    byte_chars_[b] = character;
    char_bytes_[alphabet[static_cast<size_t>(b)]] = static_cast<uint8_t>(b);
  }

  int32_t rank = 0;
  for (const auto& [left, right] : spec.merges) {
    auto l = vocab_.find(left), r = vocab_.find(right), merged = vocab_.find(left + right);
    check(l != vocab_.end() && r != vocab_.end() && merged != vocab_.end(),
          source_ + ": merge " + std::to_string(rank) + " ('" + left + "' '" + right +
              "') uses or makes a token that is not in the vocabulary");
    merges_.emplace(pair_key(l->second, r->second), std::make_pair(rank, merged->second));
    ++rank;
  }

  if (!spec.pattern.empty()) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    regex_ = std::make_unique<Regex>();
    regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(spec.pattern.c_str()), spec.pattern.size(),
                                 PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    if (!regex_->code) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      throw Error(source_ + ": the pre-tokenizer regex does not compile at offset " + std::to_string(offset) + ": " +
                  reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(regex_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is missing
  }
}

ByteLevelBpeTokenizer::~ByteLevelBpeTokenizer() = default;

int64_t ByteLevelBpeTokenizer::token_id(const std::string& token) const {
  int64_t added = added_.find(token);
  if (added >= 0) return added;
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

// Merges the lowest-ranked adjacent pair, every occurrence left to right, until no pair has a merge.
void ByteLevelBpeTokenizer::merge(std::vector<int64_t>& ids) const {
  while (ids.size() > 1) {
    int32_t best = std::numeric_limits<int32_t>::max();
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      auto it = merges_.find(pair_key(ids[i], ids[i + 1]));
      if (it != merges_.end()) best = std::min(best, it->second.first);
    }
    if (best == std::numeric_limits<int32_t>::max()) return;
    size_t out = 0;
    for (size_t i = 0; i < ids.size(); ++out) {
      if (i + 1 < ids.size()) {
        auto it = merges_.find(pair_key(ids[i], ids[i + 1]));
        if (it != merges_.end() && it->second.first == best) {
          ids[out] = it->second.second;
          i += 2;
          continue;
        }
      }
      ids[out] = ids[i++];
    }
    ids.resize(out);
  }
}

void ByteLevelBpeTokenizer::encode_word(std::string_view word, std::vector<int64_t>& out) const {
  if (word.empty()) return;
  std::string key(word);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int64_t> ids;
  if (ignore_merges_) {
    std::string mapped;
    for (unsigned char b : word) mapped += byte_chars_[b];
    auto it = vocab_.find(mapped);
    if (it != vocab_.end()) ids.push_back(it->second);
  }
  if (ids.empty()) {
    ids.reserve(word.size());
    for (unsigned char b : word) ids.push_back(byte_ids_[b]);
    merge(ids);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheLimit) cache_.clear();
  cache_.emplace(std::move(key), std::move(ids));
}

std::vector<int64_t> ByteLevelBpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  unicode::validate(text);
  std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
      regex_ ? pcre2_match_data_create_from_pattern(regex_->code, nullptr) : nullptr, &pcre2_match_data_free);
  for (const auto& segment : added_.split(text)) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    std::string piece = nfc_ ? unicode::nfc(segment.text) : std::string(segment.text);
    if (add_prefix_space_ && !piece.empty() && piece[0] != ' ') piece.insert(0, 1, ' ');
    if (!regex_) {
      encode_word(piece, ids);
      continue;
    }
    // Split, behaviour "Isolated": every match is a word, and so is any text between matches.
    auto subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
    size_t at = 0, last = 0;
    while (at < piece.size()) {
      int found = pcre2_match(regex_->code, subject, piece.size(), at, PCRE2_NO_UTF_CHECK, match.get(), nullptr);
      if (found == PCRE2_ERROR_NOMATCH) break;  // the rest is one gap word
      check(found > 0, source_ + ": the pre-tokenizer regex failed (PCRE2 error " + std::to_string(found) + ")");
      PCRE2_SIZE* span = pcre2_get_ovector_pointer(match.get());
      size_t start = span[0], end = span[1];
      if (start > last) encode_word(std::string_view(piece).substr(last, start - last), ids);
      if (end == start) {  // an empty match: step over one character
        end = start + 1;
        while (end < piece.size() && (static_cast<unsigned char>(piece[end]) & 0xC0) == 0x80) ++end;
        encode_word(std::string_view(piece).substr(start, end - start), ids);
      } else {
        encode_word(std::string_view(piece).substr(start, end - start), ids);
      }
      at = last = end;
    }
    if (last < piece.size()) encode_word(std::string_view(piece).substr(last), ids);
  }
  return ids;
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size_ || special_[static_cast<size_t>(id)]) continue;
    const std::string& token = tokens_[static_cast<size_t>(id)];
    if (added_text_[static_cast<size_t>(id)]) {  // an added, non-special token's text is itself
      bytes += token;
      continue;
    }
    for (char32_t c : unicode::decode(token, "token")) {
      auto it = char_bytes_.find(c);
      if (it != char_bytes_.end()) bytes.push_back(static_cast<char>(it->second));
    }
  }
  return unicode::lossy(bytes);
}

}  // namespace peft
