// Hostile model files found by fuzzing (fuzz/fuzz_safetensors) or by reading the readers: each is refused with
// one line naming the file, never a crash, a stack overflow or an exception other than peft::Error.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "core/error.h"
#include "models/model_config.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "test_util.h"

namespace peft {
namespace {

std::string safetensors_bytes(const std::string& header, const std::string& data = "") {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((uint64_t(header.size()) >> (8 * i)) & 0xff);
  return bytes + header + data;
}

// The message File::open throws for a file holding `bytes`, checked to be one line naming the file.
std::string open_error(const std::string& bytes) {
  std::string path = test::write_text(test::temp_dir("untrusted-st") + "/model.safetensors", bytes);
  std::string message = test::error_of([&] { safetensors::File::open(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_EQ(message.find_first_of("\n\r"), std::string::npos) << message;
  return message;
}

std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(UntrustedSafetensors, RefusesA100kDeepHeaderBeforeParsingIt) {
  std::string message = open_error(safetensors_bytes(R"({"a":)" + nested(100000) + "}"));
  EXPECT_NE(message.find("header nested deeper than 128 levels"), std::string::npos) << message;
}

TEST(UntrustedSafetensors, RefusesAnEmptyShapeWhoseStridesOverflow) {
  // No bytes, so the size check passes; LibTorch would still multiply the other dimensions into strides.
  std::string message = open_error(safetensors_bytes(
      R"({"a":{"dtype":"F32","shape":[0,9223372036854775807,9223372036854775807],"data_offsets":[0,0]}})"));
  EXPECT_NE(message.find("tensor 'a': shape [0, 9223372036854775807, 9223372036854775807] is too large"),
            std::string::npos)
      << message;
}

TEST(UntrustedSafetensors, ShortensShapesOfManyDimensionsInMessages) {
  std::string shape = "1";
  for (int i = 1; i < 5000; ++i) shape += ",1";
  std::string message = open_error(safetensors_bytes(
      R"({"a":{"dtype":"F32","shape":[)" + shape + R"(],"data_offsets":[0,8]}})", std::string(8, '\0')));
  EXPECT_NE(message.find("shape [1, 1, 1, 1, 1, 1, 1, 1, ..., 1] (5000 dimensions) of F32 needs 4 bytes"),
            std::string::npos)
      << message;
  EXPECT_LT(message.size(), 400u) << message;
}

TEST(UntrustedSafetensors, EscapesLineBreaksInQuotedNames) {
  std::string message =
      open_error(safetensors_bytes(R"({"a\nb\u001b[2J":{"dtype":"F99","shape":[],"data_offsets":[0,0]}})"));
  EXPECT_NE(message.find("tensor 'a\\x0ab\\x1b[2J': unsupported dtype 'F99'"), std::string::npos) << message;
}

TEST(UntrustedSafetensors, CutsTheParserMessageForAHugeBadToken) {
  std::string message = open_error(safetensors_bytes(R"({")" + std::string(1 << 20, 'x') + "\x01\"}"));
  EXPECT_NE(message.find("header not valid JSON"), std::string::npos) << message;
  EXPECT_LT(message.size(), 700u);
}

TEST(UntrustedModelConfig, RefusesDeepNestingAndNumberOverflow) {
  // Both used to escape as nlohmann exceptions or overflow the stack when the parsed value was copied.
  EXPECT_EQ(test::error_of([] { parse_model_config(R"({"a":)" + nested(100000) + "}", "config.json"); }),
            "config.json: JSON nested deeper than 128 levels");
  std::string message = test::error_of([] { parse_model_config(R"({"hidden_size": 1e999})", "config.json"); });
  EXPECT_EQ(message.rfind("config.json: invalid JSON: [json.exception.out_of_range.406] number overflow", 0), 0u)
      << message;
}

TEST(UntrustedTokenizerFile, RefusesADeepTokenizerJson) {
  std::string path =
      test::write_text(test::temp_dir("untrusted-tok") + "/tokenizer.json", R"({"model":)" + nested(100000) + "}");
  EXPECT_EQ(test::error_of([&] { load_tokenizer(path, 1, 2); }), path + ": JSON nested deeper than 128 levels");
}

}  // namespace
}  // namespace peft
