#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <optional>

#include "core/error.h"
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
  auto var = load_tokenizer(*var##_path, 1, 2)

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "(no peft::Error thrown)";
}

}  // namespace

TEST(Tokenizer, LoadsFromFileAndFromDirectory) {
  REQUIRE_TOKENIZER(from_file);
  auto from_dir = load_tokenizer(fs::path(*from_file_path).parent_path().string(), 1, 2);
  EXPECT_EQ(from_file->vocab_size(), 512);
  EXPECT_EQ(from_dir->vocab_size(), 512);
  EXPECT_EQ(from_file->encode("Once upon a time"), from_dir->encode("Once upon a time"));
}

TEST(Tokenizer, SpecialIdsComeFromArgumentsAndPadFallsBackToEos) {
  auto path = peft::test::stories_tokenizer();
  if (!path) GTEST_SKIP() << "stories260K tokenizer.model not found";
  auto tokenizer = load_tokenizer(*path, 5, 7);
  EXPECT_EQ(tokenizer->bos_id(), 5);
  EXPECT_EQ(tokenizer->eos_id(), 7);
  EXPECT_EQ(tokenizer->pad_id(), 7);  // tok512 has no pad piece
}

TEST(Tokenizer, RoundTripsEnglishText) {
  REQUIRE_TOKENIZER(tokenizer);
  for (std::string text : {"Once upon a time, there was a little girl named Lily.",
                           "She liked to play outside.\nOne day, she saw a big red ball!",
                           "Numbers 123 and punctuation: (yes) \"quoted\" - ok?"}) {
    auto ids = tokenizer->encode(text);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(tokenizer->decode(ids), text);
  }
  EXPECT_TRUE(tokenizer->encode("").empty());
  EXPECT_EQ(tokenizer->decode({}), "");
}

TEST(Tokenizer, EncodeAddsNoBosOrEos) {
  REQUIRE_TOKENIZER(tokenizer);
  auto ids = tokenizer->encode("Hello world");
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tokenizer->bos_id()), 0);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tokenizer->eos_id()), 0);
  for (int64_t id : ids) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, tokenizer->vocab_size());
  }
  // Control ids decode to nothing, so a BOS/EOS-wrapped sequence decodes to the same text.
  std::vector<int64_t> wrapped = {1};
  wrapped.insert(wrapped.end(), ids.begin(), ids.end());
  wrapped.push_back(2);
  EXPECT_EQ(tokenizer->decode(wrapped), "Hello world");
}

TEST(Tokenizer, DummyPrefixMakesAWordEncodeAloneAsAfterASpace) {
  REQUIRE_TOKENIZER(tokenizer);
  // The dummy prefix: "world" alone and " world" inside a sentence both start with a word-start piece.
  auto alone = tokenizer->encode("world");
  auto sentence = tokenizer->encode("Hello world");
  ASSERT_GE(sentence.size(), alone.size());
  EXPECT_TRUE(std::equal(alone.begin(), alone.end(), sentence.end() - alone.size()));
}

TEST(Tokenizer, DecodeSkipsIdsOutsideTheVocabulary) {
  REQUIRE_TOKENIZER(tokenizer);
  auto ids = tokenizer->encode("a cat");
  auto padded = ids;
  padded.push_back(tokenizer->vocab_size() + 10);
  padded.insert(padded.begin(), -3);
  EXPECT_EQ(tokenizer->decode(padded), "a cat");
}

TEST(Tokenizer, MatchesLibsentencepieceIds) {
  // Ids from libsentencepiece 0.1.97 EncodeAsIds on the same model (byte fallback for the emoji, spaces collapsed
  // by this model's remove_extra_whitespaces).
  REQUIRE_TOKENIZER(tokenizer);
  EXPECT_EQ(tokenizer->encode("Hello world"), (std::vector<int64_t>{346, 306, 414, 263, 304, 341}));
  EXPECT_EQ(tokenizer->encode("Once upon a time, there was a little girl named Lily."),
            (std::vector<int64_t>{403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426}));
  std::vector<int64_t> mixed = {280, 412, 431, 485, 410, 243, 162, 156, 133,
                                13,  259, 424, 414, 262, 427, 412, 331, 419};
  EXPECT_EQ(tokenizer->encode("caf\xC3\xA9 \xF0\x9F\x99\x82\n  two  spaces "), mixed);
  EXPECT_EQ(tokenizer->decode(mixed), "caf\xC3\xA9 \xF0\x9F\x99\x82\n two spaces");
}

TEST(Tokenizer, MatchesHuggingFaceLlama2Ids) {
  auto shared = shared_data_dir();
  std::string path = shared ? *shared + "/llama2-tokenizer/tokenizer.model" : "";
  if (!shared || !fs::exists(path)) GTEST_SKIP() << "llama2 tokenizer.model not found";
  auto tokenizer = load_tokenizer(path, 1, 2);
  EXPECT_EQ(tokenizer->vocab_size(), 32000);
  // LlamaTokenizer("Hello world").input_ids == [1, 15043, 3186]; encode() leaves out the BOS.
  EXPECT_EQ(tokenizer->encode("Hello world"), (std::vector<int64_t>{15043, 3186}));
  EXPECT_EQ(tokenizer->decode({1, 15043, 3186, 2}), "Hello world");
  // Llama 2 keeps spaces (no remove_extra_whitespaces); only the dummy prefix is dropped on decoding.
  std::vector<int64_t> mixed = {274, 28059, 29871, 243, 162, 156, 133, 13, 29871, 1023, 29871, 8162, 29871};
  EXPECT_EQ(tokenizer->encode("caf\xC3\xA9 \xF0\x9F\x99\x82\n  two  spaces "), mixed);
  EXPECT_EQ(tokenizer->decode(mixed), "caf\xC3\xA9 \xF0\x9F\x99\x82\n  two  spaces ");
  EXPECT_EQ(tokenizer->decode(tokenizer->encode(" Hello")), " Hello");
}

TEST(Tokenizer, DirectoryWithoutTokenizerIsAnError) {
  std::string dir = temp_dir("tokenizer-empty");
  EXPECT_EQ(error_of([&] { load_tokenizer(dir, 1, 2); }),
            "no tokenizer found in " + dir +
                " (looked for tokenizer.model, tokenizer.json, encoder.json + vocab.bpe, vocab.txt)");
}

TEST(Tokenizer, MissingPathIsAnError) {
  std::string path = temp_dir("tokenizer-missing") + "/nope.model";
  std::string message = error_of([&] { load_tokenizer(path, 1, 2); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("not found"), std::string::npos) << message;
}

TEST(Tokenizer, UnloadableFileIsAnErrorNamingIt) {
  std::string dir = temp_dir("tokenizer-garbage");
  std::string path = write_text(dir + "/tokenizer.model", "this is not a sentencepiece model");
  for (const std::string& location : {path, dir}) {
    std::string message = error_of([&] { load_tokenizer(location, 1, 2); });
    EXPECT_NE(message.find("cannot load tokenizer " + path + ": "), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}
