// A guard for JSON read from files. nlohmann's parser is iterative, but copying, comparing and dumping a parsed
// value recurse once per nesting level, so a hostile file ("[[[[..." 100k deep) would overflow the stack long
// after it was accepted. Every reader of untrusted JSON checks the depth first, in one cheap pass over the text.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace peft {

// Far deeper than anything this tool reads (safetensors headers, adapter_config.json, data records: under 10).
inline constexpr size_t kMaxJsonDepth = 128;

// True when the arrays and objects of `text` (strings skipped) nest at most kMaxJsonDepth deep. Says nothing
// about validity: the parser decides that.
bool json_depth_ok(std::string_view text);

// Throws peft::Error "<where>: JSON nested deeper than 128 levels" unless json_depth_ok(text).
void check_json_depth(std::string_view text, const std::string& where);

// Parses JSON read from a file: depth checked first, then any parser error (malformed text, a number beyond double
// such as 1e999) becomes peft::Error "<where>: invalid JSON: <parser's message, made printable>".
nlohmann::json parse_json(std::string_view text, const std::string& where);

}  // namespace peft
