// Hostile data files found by fuzzing (fuzz/fuzz_data_readers) or by reading the readers: deep JSON, numbers out
// of range, huge lines, control characters, invalid UTF-8 and NUL bytes are read or refused with one line naming
// the file, never a crash or an exception other than peft::Error.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "data/classification.h"
#include "data/dataset.h"
#include "data/generation.h"
#include "io/tokenizer.h"
#include "test_util.h"

namespace peft {
namespace {

using test::error_of;

std::string deep_line() {
  return R"({"text": "x", "prompt": "p", "label": 1, "meta": )" + std::string(100000, '[') + std::string(100000, ']') +
         "}";
}

class UntrustedData : public ::testing::Test {
 protected:
  void SetUp() override {
    auto path = test::stories_tokenizer();
    if (!path) GTEST_SKIP() << "no stories260K tokenizer";
    tokenizer_ = load_tokenizer(*path, 1, 2);
    dir_ = test::temp_dir("untrusted-data");
  }
  std::string write(const std::string& name, const std::string& text) {
    return test::write_text(dir_ + "/" + name, text);
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  std::string dir_;
};

TEST_F(UntrustedData, EveryJsonReaderRefusesA100kDeepLineBeforeParsingIt) {
  std::string fine = R"({"text": "fine", "prompt": "p", "completion": "c", "label": 1})";
  std::string path = write("deep.jsonl", fine + "\n" + deep_line() + "\n");
  std::string expected = path + ":2: JSON nested deeper than 128 levels";
  EXPECT_EQ(error_of([&] { load_examples(path, *tokenizer_, 16); }), expected);
  EXPECT_EQ(error_of([&] { load_classification(path); }), expected);
  EXPECT_EQ(error_of([&] { load_generation_set(path); }), expected);
  std::string array = write("deep.json", "[" + deep_line() + "]");
  EXPECT_EQ(error_of([&] { load_examples(array, *tokenizer_, 16); }), array + ": JSON nested deeper than 128 levels");
}

TEST_F(UntrustedData, NumberOverflowIsAnInvalidJsonError) {
  // nlohmann reports 1e999 as out_of_range, which escaped the readers that caught only parse_error.
  std::string path = write("overflow.jsonl", "{\"text\": \"a\", \"weight\": 1e999}\n");
  std::string message = error_of([&] { load_examples(path, *tokenizer_, 16); });
  EXPECT_EQ(message.rfind(path + ":1: invalid JSON: [json.exception.out_of_range.406] number overflow", 0), 0u)
      << message;
  std::string array = write("overflow.json", "[{\"text\": \"a\", \"weight\": -1e999}]");
  EXPECT_NE(error_of([&] { load_examples(array, *tokenizer_, 16); }).find("number overflow"), std::string::npos);
}

TEST_F(UntrustedData, AHugeLineGivesAShortOneLineMessage) {
  std::string huge(4 << 20, 'x');
  std::string path = write("huge.jsonl", "{\"text\": \"" + huge + "\x01\"}\n");
  std::string message = error_of([&] { load_examples(path, *tokenizer_, 16); });
  EXPECT_EQ(message.rfind(path + ":1: invalid JSON: ", 0), 0u) << message.substr(0, 200);
  EXPECT_LT(message.size(), 700u);
  // A TSV header of one huge field is quoted cut short; control characters in it are escaped.
  std::string tsv = write("huge.tsv", "\x1b[2J" + huge + "\tlabel\n");
  message = error_of([&] { load_classification(tsv); });
  EXPECT_EQ(message.rfind(tsv + ":1: unrecognised TSV header '\\x1b[2Jxxx", 0), 0u) << message.substr(0, 200);
  EXPECT_LT(message.size(), 700u);
  // A huge line that is valid is read (and truncated to max_length tokens).
  std::string ok = write("long.jsonl", "{\"text\": \"" + std::string(1 << 20, 'a') + "\"}\n");
  auto examples = load_examples(ok, *tokenizer_, 16);
  ASSERT_EQ(examples.size(), 1u);
  EXPECT_EQ(examples[0].input_ids.size(), 16u);
}

TEST_F(UntrustedData, LabelsWithControlCharactersStayOnOneLine) {
  std::string path = write("labels.tsv", "sentence\tlabel\ngood\t1\nbad\t\x1b\r\n");
  std::string message = error_of([&] { load_classification(path, {"0", "1"}); });
  EXPECT_EQ(message, path + ":3: label '\\x1b' is not one of 0, 1");
}

TEST_F(UntrustedData, InvalidUtf8AndNulBytesAreReadOrRefusedCleanly) {
  const std::string bytes("a\xff\xfe\0b\xc3\x28", 7);
  // Raw text formats carry the bytes to the tokenizer, which must cope with them.
  EXPECT_FALSE(load_examples(write("bytes.txt", bytes + " more text"), *tokenizer_, 16).empty());
  auto csv = load_examples(write("bytes.csv", "mr,ref\n\"" + bytes + "\"," + bytes + "\n"), *tokenizer_, 16);
  EXPECT_EQ(csv.size(), 1u);
  auto tsv = load_classification(write("bytes.tsv", "sentence\tlabel\n" + bytes + "\t1\n"));
  ASSERT_EQ(tsv.examples.size(), 1u);
  EXPECT_EQ(tsv.examples[0].text_a, bytes);
  // JSON requires UTF-8: the parser refuses the line; an escaped NUL is text.
  std::string jsonl = write("bytes.jsonl", "{\"text\": \"" + bytes + "\"}\n");
  EXPECT_NE(error_of([&] { load_examples(jsonl, *tokenizer_, 16); }).find(jsonl + ":1: invalid JSON"),
            std::string::npos);
  EXPECT_EQ(load_examples(write("nul.jsonl", "{\"text\": \"a\\u0000b\"}\n"), *tokenizer_, 16).size(), 1u);
}

TEST(UntrustedDataPaths, AnOverlongGenerationPathIsNotFound) {
  // std::filesystem::is_regular_file(path) threw filesystem_error (File name too long).
  std::string path = std::string(5000, 'd') + ".csv";
  EXPECT_EQ(error_of([&] { load_generation_set(path); }), "generation data not found: " + path);
}

}  // namespace
}  // namespace peft
