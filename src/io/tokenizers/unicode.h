// The Unicode facts the tokenizers need, from Debian's libutf8proc: UTF-8 <-> code points, normalisation forms,
// general categories and lower-casing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace peft::unicode {

// Throws peft::Error "<what> is not valid UTF-8 (byte N)" for malformed input.
void validate(std::string_view text, const std::string& what = "text");
std::vector<char32_t> decode(std::string_view text, const std::string& what = "text");
void append(std::string& out, char32_t code_point);
std::string encode(const std::vector<char32_t>& code_points);

std::string nfc(std::string_view text);
std::string nfd(std::string_view text);

// Two-letter general category, e.g. "Lu", "Mn", "Zs", "Cc".
const char* category(char32_t code_point);
bool is_nonspacing_mark(char32_t code_point);  // Mn
char32_t to_lower(char32_t code_point);

// Bytes that are not valid UTF-8 become U+FFFD, as Rust's String::from_utf8_lossy does (decoders).
std::string lossy(std::string_view bytes);

}  // namespace peft::unicode
