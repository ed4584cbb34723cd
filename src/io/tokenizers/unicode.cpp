#include "io/tokenizers/unicode.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "core/error.h"

namespace peft::unicode {
namespace {

const auto* bytes_of(std::string_view text) { return reinterpret_cast<const utf8proc_uint8_t*>(text.data()); }

std::string normalise(std::string_view text, utf8proc_option_t form) {
  utf8proc_uint8_t* result = nullptr;
  auto length = utf8proc_map(bytes_of(text), static_cast<utf8proc_ssize_t>(text.size()), &result,
                             static_cast<utf8proc_option_t>(UTF8PROC_STABLE | form));
  check(length >= 0, std::string("text is not valid UTF-8 (") + utf8proc_errmsg(length) + ")");
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(result, &std::free);
  return std::string(reinterpret_cast<const char*>(result), static_cast<size_t>(length));
}

}  // namespace

void validate(std::string_view text, const std::string& what) {
  size_t at = 0;
  while (at < text.size()) {
    if (static_cast<unsigned char>(text[at]) < 0x80) {  // ASCII: the common case, no call
      ++at;
      continue;
    }
    utf8proc_int32_t code_point = 0;
    auto used = utf8proc_iterate(bytes_of(text) + at, static_cast<utf8proc_ssize_t>(text.size() - at), &code_point);
    check(used > 0, what + " is not valid UTF-8 (byte " + std::to_string(at) + ")");
    at += static_cast<size_t>(used);
  }
}

std::vector<char32_t> decode(std::string_view text, const std::string& what) {
  std::vector<char32_t> out;
  out.reserve(text.size());
  size_t at = 0;
  while (at < text.size()) {
    utf8proc_int32_t code_point = 0;
    auto used = utf8proc_iterate(bytes_of(text) + at, static_cast<utf8proc_ssize_t>(text.size() - at), &code_point);
    check(used > 0, what + " is not valid UTF-8 (byte " + std::to_string(at) + ")");
    out.push_back(static_cast<char32_t>(code_point));
    at += static_cast<size_t>(used);
  }
  return out;
}

void append(std::string& out, char32_t code_point) {
  utf8proc_uint8_t buffer[4];
  auto used = utf8proc_encode_char(static_cast<utf8proc_int32_t>(code_point), buffer);
  out.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(used));
}

std::string encode(const std::vector<char32_t>& code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (char32_t c : code_points) append(out, c);
  return out;
}

std::string nfc(std::string_view text) { return normalise(text, UTF8PROC_COMPOSE); }
std::string nfd(std::string_view text) { return normalise(text, UTF8PROC_DECOMPOSE); }

const char* category(char32_t code_point) {
  return utf8proc_category_string(static_cast<utf8proc_int32_t>(code_point));
}

bool is_nonspacing_mark(char32_t code_point) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(code_point)) == UTF8PROC_CATEGORY_MN;
}

char32_t to_lower(char32_t code_point) {
  return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(code_point)));
}

std::string lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t at = 0;
  while (at < bytes.size()) {
    utf8proc_int32_t code_point = 0;
    auto used = utf8proc_iterate(bytes_of(bytes) + at, static_cast<utf8proc_ssize_t>(bytes.size() - at), &code_point);
    if (used > 0) {
      out.append(bytes.substr(at, static_cast<size_t>(used)));
      at += static_cast<size_t>(used);
    } else {
      out.append("\xEF\xBF\xBD");
      ++at;
    }
  }
  return out;
}

}  // namespace peft::unicode
