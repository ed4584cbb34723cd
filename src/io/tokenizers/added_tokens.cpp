#include "io/tokenizers/added_tokens.h"

#include <algorithm>

namespace peft {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

AddedTokens::AddedTokens(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  tokens_.erase(std::remove_if(tokens_.begin(), tokens_.end(), [](const AddedToken& t) { return t.content.empty(); }),
                tokens_.end());
  std::stable_sort(tokens_.begin(), tokens_.end(),
                   [](const AddedToken& a, const AddedToken& b) { return a.content.size() > b.content.size(); });
  for (const auto& token : tokens_) first_byte_[static_cast<unsigned char>(token.content[0])] = true;
}

int64_t AddedTokens::find(std::string_view content) const {
  for (const auto& token : tokens_) {
    if (token.content == content) return token.id;
  }
  return -1;
}

std::vector<TextSegment> AddedTokens::split(std::string_view text) const {
  std::vector<TextSegment> out;
  size_t plain_start = 0;
  size_t at = 0;
  while (at < text.size()) {
    const AddedToken* hit = nullptr;
    if (first_byte_[static_cast<unsigned char>(text[at])]) {
      for (const auto& token : tokens_) {
        if (text.compare(at, token.content.size(), token.content) == 0) {
          hit = &token;
          break;
        }
      }
    }
    if (!hit) {
      ++at;
      continue;
    }
    size_t plain_end = at, next = at + hit->content.size();
    if (hit->lstrip) {
      while (plain_end > plain_start && is_space(text[plain_end - 1])) --plain_end;
    }
    if (hit->rstrip) {
      while (next < text.size() && is_space(text[next])) ++next;
    }
    if (plain_end > plain_start) out.push_back({text.substr(plain_start, plain_end - plain_start), -1});
    out.push_back({text.substr(at, hit->content.size()), hit->id});
    plain_start = at = next;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
  return out;
}

}  // namespace peft
