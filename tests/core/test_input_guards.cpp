// Guards for text read from files: the JSON nesting check every JSON reader runs before parsing, and printable(),
// which keeps quoted input from breaking one-line error messages.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/json_depth.h"
#include "core/strings.h"
#include "test_util.h"

namespace peft {
namespace {

std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonDepth, AcceptsNestingUpToTheLimit) {
  EXPECT_TRUE(json_depth_ok(""));
  EXPECT_TRUE(json_depth_ok(R"({"a": [1, {"b": [[]]}], "c": {}})"));
  EXPECT_TRUE(json_depth_ok(nested(kMaxJsonDepth)));
  EXPECT_FALSE(json_depth_ok(nested(kMaxJsonDepth + 1)));
}

TEST(JsonDepth, RefusesA100kDeepDocumentWithOneLine) {
  std::string message = test::error_of([] { check_json_depth(nested(100000), "data.jsonl:3"); });
  EXPECT_EQ(message, "data.jsonl:3: JSON nested deeper than 128 levels");
  // Unbalanced input (the parser rejects it later) is measured the same way.
  EXPECT_FALSE(json_depth_ok(std::string(100000, '{')));
}

TEST(JsonDepth, BracketsInsideStringsDoNotCount) {
  std::string text = "[\"" + std::string(1000, '[') + "\\\"" + std::string(1000, '{') + "\"]";
  EXPECT_TRUE(json_depth_ok(text));
  // An escaped backslash ends the escape: the quote after it closes the string.
  EXPECT_FALSE(json_depth_ok("[\"\\\\\"" + nested(kMaxJsonDepth) + "]"));
}

TEST(Printable, EscapesControlCharactersAndCutsLongText) {
  EXPECT_EQ(printable("plain text é"), "plain text é");
  EXPECT_EQ(printable(std::string("a\nb\r\0c\x1b[31m\x7f", 12)), "a\\x0ab\\x0d\\x00c\\x1b[31m\\x7f");
  EXPECT_EQ(printable(std::string(300, 'x'), 10), "xxxxxxxxxx...");
  // A cut never splits a UTF-8 character: "é" is two bytes.
  EXPECT_EQ(printable("abcé", 4), "abc...");
}

}  // namespace
}  // namespace peft
