// Hostile adapter_config.json files found by fuzzing (fuzz/fuzz_adapter_config) or by reading the method readers:
// each is refused with one line, never a crash, undefined behaviour or an exception other than peft::Error.
#include <gtest/gtest.h>

#include "core/error.h"
#include "peft/adapter_io.h"
#include "peft/composition.h"
#include "peft/target_matcher.h"
#include "test_util.h"

namespace peft {
namespace {

using test::error_of;

// read_adapter_config on a directory holding `text` as adapter_config.json; returns the error ("" when read).
std::string read_error(const std::string& text, std::string* path = nullptr) {
  std::string directory = test::temp_dir("adapter-config-input");
  std::string file = test::write_text(directory + "/adapter_config.json", text);
  if (path) *path = file;
  std::string message = error_of([&] { read_adapter_config(directory); });
  return message == "(no error)" ? "" : message;
}

// The error method_from_adapter_config throws for `text`.
std::string method_error(const std::string& text) {
  return error_of([&] { method_from_adapter_config(nlohmann::json::parse(text)); });
}

TEST(AdapterConfigInput, RefusesA100kDeepFileBeforeParsingIt) {
  std::string path;
  std::string message = read_error(
      R"({"peft_type":"LORA","r":1,"target_modules":)" + std::string(100000, '[') + std::string(100000, ']') + "}",
      &path);
  EXPECT_EQ(message, path + ": JSON nested deeper than 128 levels");
}

TEST(AdapterConfigInput, NumberOverflowIsAnInvalidJsonError) {
  std::string path;
  std::string message = read_error(R"({"peft_type":"LORA","r":2e308})", &path);  // was an escaping out_of_range
  EXPECT_EQ(message.rfind(path + ": invalid JSON: [json.exception.out_of_range.406] number overflow", 0), 0u)
      << message;
}

TEST(AdapterConfigInput, LoraUseDoraOfTheWrongTypeIsRefused) {
  // config.value("use_dora", false) threw nlohmann's type_error out of the reader.
  std::string message = method_error(R"({"peft_type":"LORA","r":8,"use_dora":"no"})");
  EXPECT_NE(message.find("type must be boolean, but is string"), std::string::npos) << message;
}

TEST(AdapterConfigInput, LoraRankMustBeAnInteger) {
  // A float r was cast to int64 (undefined for 1e300).
  for (const char* r : {"1e300", "8.5", "\"8\"", "0", "-3"}) {
    EXPECT_EQ(method_error(std::string(R"({"peft_type":"LORA","r":)") + r + "}"), "'r' must be a positive integer")
        << r;
  }
}

TEST(AdapterConfigInput, PrefixWidthThatOverflowsIsRefused) {
  // 2 * num_layers * token_dim overflowed int64 (undefined behaviour).
  EXPECT_EQ(method_error(R"({"peft_type":"PREFIX_TUNING","num_virtual_tokens":1,)"
                         R"("num_layers":4611686018427387904,"token_dim":2})"),
            "'num_layers' 4611686018427387904 and 'token_dim' 2 are too large");
  EXPECT_EQ(method_error(R"({"peft_type":"PREFIX_TUNING","num_virtual_tokens":1,)"
                         R"("num_layers":9223372036854775807,"token_dim":1})"),
            "'num_layers' 9223372036854775807 and 'token_dim' 1 are too large");
}

TEST(AdapterConfigInput, AHugeRegexIsRefusedBeforeStdRegexCompilesIt) {
  // libstdc++ compiles regular expressions recursively: 20,000 nested parentheses overflowed the stack.
  std::string regex = std::string(20000, '(') + "q_proj" + std::string(20000, ')');
  EXPECT_EQ(method_error(R"({"peft_type":"IA3","target_modules":")" + regex + R"(","feedforward_modules":")" + regex +
                         R"("})"),
            "feedforward_modules: regular expression of 40006 characters is too long (the limit is 4096)");
  EXPECT_EQ(target_regex_problem(std::string(2000, '(') + "a" + std::string(2000, ')')), "");
}

TEST(AdapterConfigInput, QuotedValuesStayOnOneLine) {
  EXPECT_EQ(method_error(R"({"peft_type":"LO\nRA"})").find('\n'), std::string::npos);
  std::string regex = method_error(R"({"peft_type":"IA3","target_modules":"(a\n","feedforward_modules":"(a\n"})");
  EXPECT_NE(regex.find("invalid regular expression '(a\\x0a'"), std::string::npos) << regex;
  EXPECT_EQ(method_error(R"({"peft_type":"BITFIT","biases":"\r"})"), "'biases' must be all or subset, got '\\x0d'");
}

}  // namespace
}  // namespace peft
