// Python `str` semantics over UTF-8 bytes, for the Jinja interpreter: templates index, slice, strip and split
// strings by code point exactly as Python does, so non-ASCII conversations render as they do under jinja2.
// Invalid UTF-8 bytes decode to U+DC80..U+DCFF (Python's surrogateescape) and encode back unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace peft::jinja::pystr {

std::u32string decode(std::string_view utf8);
std::string encode(std::u32string_view text);
void append_utf8(std::string& out, char32_t c);
bool is_ascii(std::string_view text);
// len(s): code points.
size_t length(std::string_view utf8);

// str.isspace() for one character (also what Python's regex \s matches).
bool is_space(char32_t c);
// str.isprintable() for one character, approximately: controls, separators other than ' ', format characters,
// surrogates and private use are not printable (decides repr()'s escapes).
bool is_printable(char32_t c);
bool is_digit(char32_t c);
bool is_alpha(char32_t c);

// Simple case mapping: ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic, Armenian and fullwidth Latin. Other
// scripts are left unchanged (they are uncased or rarely upper-/lower-cased by chat templates).
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
bool is_cased(char32_t c);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);       // str.title()
std::string capitalize(std::string_view s);  // str.capitalize()
bool is_lower(std::string_view s);           // str.islower()
bool is_upper(std::string_view s);           // str.isupper()

// str.strip / lstrip / rstrip; chars == nullopt strips whitespace.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / str.rsplit; sep == nullopt splits on runs of whitespace. maxsplit < 0: no limit.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> splitlines(std::string_view s);
// str.replace(old, new, count); count < 0 replaces all.
std::string replace(std::string_view s, std::string_view old_text, std::string_view new_text, int64_t count);
// str.find / str.count in code points; start and end as Python's optional slice bounds.
int64_t find(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end,
             bool reverse);
int64_t count(std::string_view s, std::string_view sub);

// repr(s): quoted and escaped as Python prints strings inside lists and dicts.
std::string repr(std::string_view s);
// repr(float): the shortest text that reads back to x ("1.0", "1e+20", "0.30000000000000004", "inf", "nan").
std::string float_repr(double x);

}  // namespace peft::jinja::pystr
