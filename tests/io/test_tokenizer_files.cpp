// tokenizer.json (byte-level BPE, WordPiece), GPT-2's encoder.json + vocab.bpe and BERT's vocab.txt, checked on
// the real vocabularies of ../shared/data against the independent reference's tokenizations
// (scripts/reference/make_tokenizer_fixtures.py -> tests/fixtures/tokenizers/), plus the format errors. The
// real-vocabulary tests skip when ../shared/data is absent (a user's clone).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/tokenizer.h"
#include "io/tokenizers/added_tokens.h"
#include "io/tokenizers/tokenizer_files.h"
#include "io/tokenizers/unicode.h"
#include "test_util.h"

namespace peft {
namespace {

namespace fs = std::filesystem;
using test::error_of;
using test::temp_dir;
using test::write_text;

// A path under ../shared/data; one that does not exist when there is none (the tests then skip).
std::string shared_data(const std::string& relative) {
  auto root = test::shared_data_dir();
  return root ? *root + "/" + relative : "/nonexistent/shared/data/" + relative;
}

#define SKIP_WITHOUT(path) \
  if (!fs::exists(path)) GTEST_SKIP() << path << " is absent (no ../shared)"

enum class RoundTrip { none, exact, nfc };

// Every reference case: the same ids, and (byte-level BPE) decoding gives the text back (NFC-normalised when the
// tokenizer normalises).
void expect_reference(const Tokenizer& tokenizer, const std::string& fixture, RoundTrip round_trip) {
  std::ifstream in(test::fixture("tokenizers/" + fixture));
  auto cases = nlohmann::json::parse(in);
  ASSERT_GT(cases.size(), 20u);
  for (const auto& c : cases) {
    std::string text = c["text"];
    auto expected = c["ids"].get<std::vector<int64_t>>();
    EXPECT_EQ(tokenizer.encode(text), expected) << "text: " << text;
    if (round_trip != RoundTrip::none && text.find("<|") == std::string::npos) {
      EXPECT_EQ(tokenizer.decode(expected), round_trip == RoundTrip::nfc ? unicode::nfc(text) : text)
          << "text: " << text;
    }
  }
}

TEST(Gpt2Tokenizer, EncoderJsonAndVocabBpeMatchTheReference) {
  SKIP_WITHOUT(shared_data("gpt2-tokenizer"));
  auto tokenizer = load_tokenizer(shared_data("gpt2-tokenizer"), 50256, 50256);
  EXPECT_EQ(tokenizer->vocab_size(), 50257);
  EXPECT_EQ(tokenizer->encode("Hello world"), (std::vector<int64_t>{15496, 995}));  // the documented ids
  expect_reference(*tokenizer, "gpt2.json", RoundTrip::exact);
  EXPECT_EQ(tokenizer->pad_id(), 50256);  // no pad token: EOS
}

TEST(Gpt2Tokenizer, TokenizerJsonGivesTheSameIds) {
  SKIP_WITHOUT(shared_data("fake-gpt2-random-hf"));
  auto tokenizer = load_tokenizer(shared_data("fake-gpt2-random-hf"), 50256, 50256);
  expect_reference(*tokenizer, "gpt2.json", RoundTrip::exact);
}

TEST(Qwen3Tokenizer, TokenizerJsonMatchesTheReference) {
  SKIP_WITHOUT(shared_data("qwen3-tokenizer"));
  auto tokenizer = load_tokenizer(shared_data("qwen3-tokenizer"), 151643, 151645);
  EXPECT_EQ(tokenizer->vocab_size(), 151669);
  expect_reference(*tokenizer, "qwen3.json", RoundTrip::nfc);
  // Special tokens written literally are single tokens, and decoding leaves them out.
  EXPECT_EQ(tokenizer->encode("<|im_start|>"), (std::vector<int64_t>{151644}));
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("<|im_start|>user")), "user");
}

TEST(BertTokenizer, TokenizerJsonMatchesTheReference) {
  SKIP_WITHOUT(shared_data("bert-tiniest-random-hf"));
  auto tokenizer = load_tokenizer(shared_data("bert-tiniest-random-hf"), 101, 102);
  EXPECT_EQ(tokenizer->vocab_size(), 30522);
  expect_reference(*tokenizer, "bert.json", RoundTrip::none);
  EXPECT_EQ(tokenizer->pad_id(), 0);  // [PAD]
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("I have a new GPU!")), "i have a new gpu !");
}

TEST(BertTokenizer, VocabTxtGivesTheSameIds) {
  SKIP_WITHOUT(shared_data("bert-tiniest-random-hf"));
  auto tokenizer = load_wordpiece_vocabulary(shared_data("bert-tiniest-random-hf/vocab.txt"), true);
  expect_reference(*tokenizer, "bert.json", RoundTrip::none);
}

TEST(AddedTokens, LeftmostLongestWithStripping) {
  AddedTokens added({{"<a>", 1, true, false, false}, {"<ab>", 2, true, false, false}, {"[M]", 3, true, true, true}});
  auto segments = added.split("x<ab>y <a> z  [M]  w");
  std::vector<std::pair<std::string, int64_t>> got;
  for (const auto& s : segments) got.emplace_back(std::string(s.text), s.id);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, int64_t>>{
                     {"x", -1}, {"<ab>", 2}, {"y ", -1}, {"<a>", 1}, {" z", -1}, {"[M]", 3}, {"w", -1}}));
}

TEST(TokenizerFiles, BadFilesAreOneLine) {
  std::string dir = temp_dir("tokenizer-files");
  write_text(dir + "/unigram.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  EXPECT_EQ(error_of([&] { load_tokenizer_json(dir + "/unigram.json"); }),
            dir +
                "/unigram.json: tokenizer model type 'Unigram' is not supported (supported: BPE (byte-level), "
                "WordPiece)");
  write_text(dir + "/metaspace.json",
             R"({"model": {"type": "BPE", "vocab": {}, "merges": []}, "pre_tokenizer": {"type": "Metaspace"}})");
  EXPECT_EQ(error_of([&] { load_tokenizer_json(dir + "/metaspace.json"); }),
            dir +
                "/metaspace.json: pre_tokenizer 'Metaspace' is not supported with BPE (supported: byte-level BPE as "
                "GPT-2, Llama 3 and Qwen write it)");
  write_text(dir + "/broken.json", "{\"model\": ");
  EXPECT_EQ(error_of([&] { load_tokenizer_json(dir + "/broken.json"); }).rfind(dir + "/broken.json: invalid JSON", 0),
            0u);
  write_text(dir + "/nobytes.json",
             R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"}})");
  EXPECT_EQ(error_of([&] { load_tokenizer_json(dir + "/nobytes.json"); }),
            dir +
                "/nobytes.json: the vocabulary lacks the byte-level token for byte 0 (is this a byte-level BPE "
                "tokenizer?)");
}

TEST(TokenizerFiles, InvalidUtf8TextIsAnError) {
  SKIP_WITHOUT(shared_data("gpt2-tokenizer"));
  auto tokenizer = load_tokenizer(shared_data("gpt2-tokenizer"), 50256, 50256);
  EXPECT_EQ(error_of([&] { tokenizer->encode("ok \xC3("); }), "text is not valid UTF-8 (byte 3)");
}

}  // namespace
}  // namespace peft
