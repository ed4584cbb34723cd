// Small string helpers shared by the config, matcher and error messages.
#pragma once

#include <string>
#include <vector>

namespace peft {

// Levenshtein distance; used for "did you mean" hints.
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word`, or "" when none is reasonably close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

std::string join(const std::vector<std::string>& parts, const std::string& separator);

// "a.b.c" -> {"a", "b", "c"}; an empty text gives one empty part.
std::vector<std::string> split(const std::string& text, char separator);

bool ends_with(const std::string& text, const std::string& suffix);
bool starts_with(const std::string& text, const std::string& prefix);

// Human-readable byte count: "12.3 MB".
std::string format_bytes(double bytes);

// Text from an input file made fit to quote in a one-line error message: control characters (line breaks, NUL,
// escape sequences) written as \xNN, and text past `max_bytes` cut off with "..." (at a UTF-8 boundary).
std::string printable(const std::string& text, size_t max_bytes = 200);
// The limit for a parser's whole message, which quotes the input it stopped at (nlohmann: the whole token).
inline constexpr size_t kMaxQuoted = 400;

}  // namespace peft
