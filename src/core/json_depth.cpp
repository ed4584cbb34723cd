#include "core/json_depth.h"

#include "core/error.h"
#include "core/strings.h"

namespace peft {

bool json_depth_ok(std::string_view text) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

void check_json_depth(std::string_view text, const std::string& where) {
  check(json_depth_ok(text), where + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
}

nlohmann::json parse_json(std::string_view text, const std::string& where) {
  check_json_depth(text, where);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for 1e999
    throw Error(where + ": invalid JSON: " + printable(e.what(), kMaxQuoted));
  }
}

}  // namespace peft
