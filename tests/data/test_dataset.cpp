#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/dataset.h"
#include "io/tokenizer.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace peft;
using peft::test::shared_data_dir;
using peft::test::source_dir;
using peft::test::temp_dir;
using peft::test::write_text;

namespace {

#define REQUIRE_TOKENIZER(var)                                              \
  auto var##_path = peft::test::stories_tokenizer();                        \
  if (!var##_path) GTEST_SKIP() << "stories260K tokenizer.model not found"; \
  auto var##_owner = load_tokenizer(*var##_path, 1, 2);                     \
  const Tokenizer& var = *var##_owner

using peft::test::ByteTokenizer;

std::vector<int64_t> concat(std::initializer_list<std::vector<int64_t>> parts) {
  std::vector<int64_t> all;
  for (const auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

std::vector<int64_t> ignored(size_t count) { return std::vector<int64_t>(count, kIgnoreIndex); }

std::string error_of(const std::string& path, const Tokenizer& tokenizer, int64_t max_length = 64) {
  try {
    load_examples(path, tokenizer, max_length);
  } catch (const Error& error) {
    return error.what();
  }
  return "(no peft::Error thrown)";
}

}  // namespace

TEST(Dataset, TextRecordsAreBosTextEosWithLossEverywhere) {
  REQUIRE_TOKENIZER(tokenizer);
  std::string path = write_text(temp_dir("data") + "/train.jsonl",
                                "{\"text\": \"Once upon a time, there was a cat.\"}\n"
                                "{\"text\": \"The cat was happy.\", \"extra\": 3}\n");
  auto examples = load_examples(path, tokenizer, 512);
  ASSERT_EQ(examples.size(), 2u);
  auto first = concat({{1}, tokenizer.encode("Once upon a time, there was a cat."), {2}});
  EXPECT_EQ(examples[0].input_ids, first);
  EXPECT_EQ(examples[0].labels, first);
  auto second = concat({{1}, tokenizer.encode("The cat was happy."), {2}});
  EXPECT_EQ(examples[1].input_ids, second);
  EXPECT_EQ(examples[1].labels, second);
}

TEST(Dataset, PromptCompletionScoresOnlyCompletionAndEos) {
  REQUIRE_TOKENIZER(tokenizer);
  std::string path = write_text(temp_dir("data") + "/train.jsonl",
                                "{\"prompt\": \"Q: What color is the sky?\\nA:\", \"completion\": \" Blue.\"}\n");
  auto examples = load_examples(path, tokenizer, 512);
  ASSERT_EQ(examples.size(), 1u);
  auto prompt = tokenizer.encode("Q: What color is the sky?\nA:");
  auto completion = tokenizer.encode(" Blue.");
  ASSERT_FALSE(prompt.empty());
  ASSERT_FALSE(completion.empty());
  EXPECT_EQ(examples[0].input_ids, concat({{1}, prompt, completion, {2}}));
  EXPECT_EQ(examples[0].labels, concat({ignored(1 + prompt.size()), completion, {2}}));
}

TEST(Dataset, E2eCsvGivesOnePromptCompletionExamplePerReference) {
  REQUIRE_TOKENIZER(tokenizer);
  std::string path = write_text(temp_dir("data") + "/e2e.csv",
                                "mr,ref\n\"name[Lily], eatType[pub]\",Lily is a pub.\n"
                                "\"name[Lily], eatType[pub]\",A pub called Lily.\n\"name[Tom]\",Tom.\n");
  auto examples = load_examples(path, tokenizer, 512);
  ASSERT_EQ(examples.size(), 3u);
  auto prompt = tokenizer.encode("name[Lily], eatType[pub]\n");
  auto completion = tokenizer.encode("A pub called Lily.");
  EXPECT_EQ(examples[1].input_ids, concat({{1}, prompt, completion, {2}}));
  EXPECT_EQ(examples[1].labels, concat({ignored(1 + prompt.size()), completion, {2}}));
}

TEST(Dataset, PromptCompletionWinsOverTextWhenBothArePresent) {
  ByteTokenizer tokenizer;
  std::string path = write_text(temp_dir("data") + "/both.jsonl", R"({"text": "ab", "prompt": "p", "completion": "c"})"
                                                                  "\n");
  auto examples = load_examples(path, tokenizer, 64);
  ASSERT_EQ(examples.size(), 1u);
  EXPECT_EQ(examples[0].input_ids, (std::vector<int64_t>{1, 'p' + 3, 'c' + 3, 2}));
  EXPECT_EQ(examples[0].labels, (std::vector<int64_t>{-100, -100, 'c' + 3, 2}));
}

TEST(Dataset, BlankLinesAndCrlfAreSkippedAndFormatsMayMix) {
  ByteTokenizer tokenizer;
  std::string path = write_text(temp_dir("data") + "/mixed.jsonl",
                                "\n   \n{\"text\": \"hi\"}\r\n\r\n{\"prompt\": \"a\", \"completion\": \"b\"}\n\t\n");
  auto examples = load_examples(path, tokenizer, 64);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].input_ids, (std::vector<int64_t>{1, 'h' + 3, 'i' + 3, 2}));
  EXPECT_EQ(examples[1].labels, (std::vector<int64_t>{-100, -100, 'b' + 3, 2}));
}

TEST(Dataset, LongExamplesAreTruncated) {
  REQUIRE_TOKENIZER(tokenizer);
  std::string text = "Once upon a time, there was a little girl named Lily. She loved to play in the park.";
  std::string path = write_text(temp_dir("data") + "/long.jsonl", "{\"text\": \"" + text + "\"}\n{\"prompt\": \"" +
                                                                      text + "\", \"completion\": \" Yes.\"}\n");
  auto full = concat({{1}, tokenizer.encode(text), {2}});
  ASSERT_GT(full.size(), 8u);
  auto examples = load_examples(path, tokenizer, 8);
  ASSERT_EQ(examples.size(), 2u);
  std::vector<int64_t> head(full.begin(), full.begin() + 8);
  EXPECT_EQ(examples[0].input_ids, head);
  EXPECT_EQ(examples[0].labels, head);
  // The prompt fills the whole window: nothing is left to score.
  EXPECT_EQ(examples[1].input_ids, head);
  EXPECT_EQ(examples[1].labels, ignored(8));
}

TEST(Dataset, TextFileIsCutIntoConsecutiveWindows) {
  REQUIRE_TOKENIZER(tokenizer);
  std::string content =
      "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
      "First Citizen:\nYou are all resolved rather to die than to famish?\n";
  std::string path = write_text(temp_dir("data") + "/corpus.txt", content);
  auto stream = concat({{1}, tokenizer.encode(content), {2}});
  ASSERT_GT(stream.size(), 20u);
  for (int64_t max_length :
       {int64_t(7), int64_t(16), static_cast<int64_t>(stream.size()), static_cast<int64_t>(stream.size()) + 5}) {
    auto examples = load_examples(path, tokenizer, max_length);
    size_t full = stream.size() / max_length, rest = stream.size() % max_length;
    ASSERT_EQ(examples.size(), full + (rest >= 2 ? 1 : 0)) << "max_length " << max_length;
    std::vector<int64_t> joined;
    for (size_t i = 0; i < examples.size(); ++i) {
      EXPECT_EQ(examples[i].labels, examples[i].input_ids);
      if (i + 1 < examples.size()) {
        EXPECT_EQ(static_cast<int64_t>(examples[i].input_ids.size()), max_length);
      }
      joined.insert(joined.end(), examples[i].input_ids.begin(), examples[i].input_ids.end());
    }
    size_t kept = rest >= 2 ? stream.size() : stream.size() - rest;
    EXPECT_EQ(joined, std::vector<int64_t>(stream.begin(), stream.begin() + kept));
  }
}

TEST(Dataset, TextFileDropsALoneFinalToken) {
  ByteTokenizer tokenizer;
  std::string path = write_text(temp_dir("data") + "/five.txt", "abc");  // stream: BOS a b c EOS
  auto examples = load_examples(path, tokenizer, 4);
  ASSERT_EQ(examples.size(), 1u);
  EXPECT_EQ(examples[0].input_ids, (std::vector<int64_t>{1, 'a' + 3, 'b' + 3, 'c' + 3}));
  examples = load_examples(path, tokenizer, 3);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[1].input_ids, (std::vector<int64_t>{'c' + 3, 2}));
}

TEST(Dataset, JsonArrayFilesAreRead) {
  ByteTokenizer tokenizer;
  std::string dir = temp_dir("data");
  auto examples = load_examples(write_text(dir + "/a.json", R"([{"text": "x"}, {"prompt": "p", "completion": "c"}])"),
                                tokenizer, 64);
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(examples[0].input_ids, (std::vector<int64_t>{1, 'x' + 3, 2}));
  // A .json file holding JSON Lines is read as such.
  examples = load_examples(write_text(dir + "/b.json", "{\"text\": \"x\"}\n{\"text\": \"y\"}\n"), tokenizer, 64);
  EXPECT_EQ(examples.size(), 2u);
  EXPECT_EQ(error_of(write_text(dir + "/c.json", R"([{"text": "x"}, {"text": 1}])"), tokenizer),
            dir +
                "/c.json: record 1 of the array: expected a \"text\" string, \"prompt\" and \"completion\" strings (or "
                "lists of messages) or \"messages\"");
  EXPECT_EQ(
      error_of(write_text(dir + "/d.json", "[{\"text\": \"x\"},"), tokenizer).rfind(dir + "/d.json: invalid JSON: ", 0),
      0u);
}

TEST(Dataset, MissingFileIsAnError) {
  ByteTokenizer tokenizer;
  std::string path = temp_dir("data") + "/absent.jsonl";
  EXPECT_EQ(error_of(path, tokenizer), "data file not found: " + path);
}

TEST(Dataset, UnknownExtensionIsAnErrorListingTheSupportedOnes) {
  ByteTokenizer tokenizer;
  std::string path = write_text(temp_dir("data") + "/train.parquet", "text\nhello\n");
  std::string message = error_of(path, tokenizer);
  EXPECT_NE(message.find(path), std::string::npos) << message;
  for (const char* extension : {".jsonl", ".json", ".txt", ".csv"})
    EXPECT_NE(message.find(extension), std::string::npos) << message;
}

TEST(Dataset, MalformedJsonNamesTheLine) {
  ByteTokenizer tokenizer;
  std::string path = write_text(temp_dir("data") + "/bad.jsonl", "{\"text\": \"ok\"}\n\n{\"text\": \"unterminated}\n");
  std::string message = error_of(path, tokenizer);
  EXPECT_EQ(message.rfind(path + ":3: invalid JSON: ", 0), 0u) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(Dataset, RecordsWithoutTheExpectedStringsAreErrors) {
  ByteTokenizer tokenizer;
  std::string dir = temp_dir("data");
  const std::string expected =
      ": expected a \"text\" string, \"prompt\" and \"completion\" strings (or lists of messages) or \"messages\"";
  int index = 0;
  for (std::string bad : {R"({"content": "x"})", R"({"text": 5})", R"({"text": null})", R"({"prompt": "p"})",
                          R"({"prompt": "p", "completion": 3})", R"({"completion": "c"})", R"(["text", "x"])",
                          R"("just a string")", R"({"text": ["a"]})"}) {
    std::string path =
        write_text(dir + "/bad" + std::to_string(index++) + ".jsonl", "{\"text\": \"fine\"}\n" + bad + "\n");
    EXPECT_EQ(error_of(path, tokenizer), path + ":2" + expected) << bad;
  }
}

TEST(Dataset, EmptyFilesAreErrors) {
  ByteTokenizer tokenizer;
  std::string dir = temp_dir("data");
  for (std::string name : {"empty.jsonl", "blank.jsonl", "empty.txt", "empty.json"}) {
    std::string path = write_text(dir + "/" + name, name.rfind("blank", 0) == 0 ? "\n  \n\n" : "");
    EXPECT_EQ(error_of(path, tokenizer), path + ": no examples (empty data set)") << name;
  }
  std::string array = write_text(dir + "/array.json", "[]");
  EXPECT_EQ(error_of(array, tokenizer), array + ": no examples (empty data set)");
}

TEST(Dataset, MaxLengthBelowTwoIsAnError) {
  ByteTokenizer tokenizer;
  std::string path = write_text(temp_dir("data") + "/ok.jsonl", "{\"text\": \"hi\"}\n");
  EXPECT_NE(error_of(path, tokenizer, 1).find("max_length"), std::string::npos);
  EXPECT_EQ(load_examples(path, tokenizer, 2).size(), 1u);
}

TEST(Dataset, TinyShakespeareTokenizesQuickly) {
  auto shared = shared_data_dir();
  if (!shared || !fs::exists(*shared + "/tinyshakespeare/input.txt")) GTEST_SKIP() << "Tiny Shakespeare not found";
  std::string path = *shared + "/tinyshakespeare/input.txt";
  REQUIRE_TOKENIZER(tokenizer);
  auto start = std::chrono::steady_clock::now();
  auto examples = load_examples(path, tokenizer, 256);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "Tiny Shakespeare: " << examples.size() << " windows of 256 in " << seconds << " s\n";
  ASSERT_GT(examples.size(), 2000u);  // about 690k tokens
  EXPECT_EQ(examples.front().input_ids.front(), 1);
  EXPECT_EQ(tokenizer.decode(examples.front().input_ids).rfind("First Citizen:\nBefore we proceed", 0), 0u);
  EXPECT_LT(seconds, 20.0);  // linear-time encoding takes about 1 s; a quadratic one would take minutes
}
