// Hostile YAML found by fuzzing (fuzz/fuzz_run_config) or by reading the readers: deep nesting is refused, not a
// stack overflow, and text quoted from the file never breaks the one-line message.
#include <gtest/gtest.h>

#include <string>

#include "config/run_config.h"
#include "config/section.h"
#include "core/error.h"
#include "test_util.h"

namespace peft {
namespace {

using test::error_of;

std::string load_error(const std::string& yaml) {
  std::string path = test::write_text(test::temp_dir("untrusted-yaml") + "/run.yaml", yaml);
  return error_of([&] { RunConfig::load(path); });
}

TEST(UntrustedYaml, A100kDeepConfigIsRefusedWithoutOverflowingTheStack) {
  // yaml-cpp's parser recurses per level and stops at its limit (500 in Debian's build), calling that a "bad file".
  std::string mappings = "model: ";
  for (int i = 0; i < 100000; ++i) mappings += "{a: ";
  mappings += "1" + std::string(100000, '}');
  for (const std::string& yaml : {"model: " + std::string(100000, '[') + std::string(100000, ']'), mappings}) {
    std::string message = load_error(yaml);
    EXPECT_NE(message.find("run.yaml:1: invalid YAML: nested too deeply ("), std::string::npos)
        << message.substr(0, 300);
    EXPECT_NE(message.find(" levels, the parser's limit)"), std::string::npos) << message.substr(0, 300);
  }
  std::string block;
  for (int i = 0; i < 100000; ++i) block += "- ";
  std::string message = error_of([&] { Section::from_yaml_string(block + "x", "cfg.yaml", "train"); });
  EXPECT_EQ(message.rfind("cfg.yaml:1: invalid YAML: nested too deeply (", 0), 0u) << message;
  // Deep flow mappings used as keys stop at another parser error; still one line, no crash.
  message = load_error("model: " + std::string(100000, '{') + std::string(100000, '}'));
  EXPECT_NE(message.find("run.yaml:1: invalid YAML: "), std::string::npos) << message.substr(0, 300);
}

TEST(UntrustedYaml, ParserMessagesQuoteControlCharactersEscaped) {
  // yaml-cpp quotes the bad escape character itself: here a carriage return.
  EXPECT_EQ(error_of([] { Section::from_yaml_string("a: \"\\\r\"", "cfg.yaml", "train"); }),
            "cfg.yaml:1: invalid YAML: unknown escape character: \\x0d");
}

TEST(UntrustedYaml, KeysAndValuesFromTheFileStayOnOneLine) {
  Section unknown = Section::from_yaml_string("\"lr\\n\\e[2J\": 1\n", "cfg.yaml", "train");
  std::string message = error_of([&] { unknown.finish(); });
  EXPECT_EQ(message, "cfg.yaml:1: unknown key 'train.lr\\x0a\\x1b[2J'");

  Section choice = Section::from_yaml_string("lr_scheduler: \"cosine\\r\\nx\"\n", "cfg.yaml", "train");
  std::string value = "linear";
  message = error_of([&] { choice.get_choice("lr_scheduler", value, {"constant", "linear", "cosine"}); });
  EXPECT_EQ(message.find_first_of("\n\r"), std::string::npos) << message;
  EXPECT_NE(message.find("got 'cosine\\x0d\\x0ax'"), std::string::npos) << message;

  Section type = Section::from_yaml_string("seed: \"4\\n2\"\n", "cfg.yaml", "train");
  int64_t seed = 0;
  EXPECT_EQ(error_of([&] { type.get("seed", seed); }), "cfg.yaml:1: train.seed: expected an integer, got '4\\x0a2'");
}

}  // namespace
}  // namespace peft
