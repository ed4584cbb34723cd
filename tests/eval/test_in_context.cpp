#include <gtest/gtest.h>

#include <set>

#include "eval/in_context.h"
#include "io/tokenizer.h"
#include "test_util.h"

namespace peft {
namespace {

std::unique_ptr<Tokenizer> stories_tokenizer() {
  return load_tokenizer(test::source_dir() + "/third_party/stories260K-hf", 1, 2);
}

Example example(std::vector<int64_t> ids, std::vector<int64_t> labels) { return {std::move(ids), std::move(labels)}; }

TEST(InContext, DrawsDistinctDemonstrationsReproducibly) {
  auto first = draw_demonstrations(100, 8, 7, "train.jsonl");
  EXPECT_EQ(first, draw_demonstrations(100, 8, 7, "train.jsonl"));
  EXPECT_NE(first, draw_demonstrations(100, 8, 8, "train.jsonl"));
  EXPECT_EQ(std::set<size_t>(first.begin(), first.end()).size(), 8u);
  for (size_t index : first) EXPECT_LT(index, 100u);
  EXPECT_TRUE(draw_demonstrations(5, 0, 1, "x").empty());
  EXPECT_NE(test::error_of([] {
              draw_demonstrations(3, 4, 1, "train.jsonl");
            }).find("train.jsonl holds 3 example(s), fewer than the 4 demonstrations"),
            std::string::npos);
}

TEST(InContext, DemonstrationsAreTheExamplesWithoutBosAndEosEachFollowedByABlankLine) {
  auto tokenizer = stories_tokenizer();
  auto separator = tokenizer->encode("\n\n");
  ASSERT_FALSE(separator.empty());
  std::vector<Example> train = {example({1, 10, 11, 2}, {}), example({1, 20, 2}, {}), example({30, 31}, {})};
  auto tokens = demonstration_tokens(train, {2, 0}, *tokenizer);
  std::vector<int64_t> expected = {30, 31};
  expected.insert(expected.end(), separator.begin(), separator.end());
  expected.insert(expected.end(), {10, 11});
  expected.insert(expected.end(), separator.begin(), separator.end());
  EXPECT_EQ(tokens, expected);
}

TEST(InContext, DemonstrationsGoAfterBosUnscoredAndTheScoredTokensStay) {
  std::vector<int64_t> demos = {50, 51, 52};
  // A prompt/completion example: BOS, prompt 5 6 (unscored), completion 7 and EOS (scored).
  auto with = with_demonstrations({example({1, 5, 6, 7, 2}, {-100, -100, -100, 7, 2})}, demos, 1, 100, "K");
  ASSERT_EQ(with.size(), 1u);
  EXPECT_EQ(with[0].input_ids, (std::vector<int64_t>{1, 50, 51, 52, 5, 6, 7, 2}));
  EXPECT_EQ(with[0].labels, (std::vector<int64_t>{-100, -100, -100, -100, -100, -100, 7, 2}));
  // A window without BOS gets one; its first token, which nothing predicted before, stays unscored.
  auto window = with_demonstrations({example({8, 9, 10}, {8, 9, 10})}, demos, 1, 100, "K");
  EXPECT_EQ(window[0].input_ids, (std::vector<int64_t>{1, 50, 51, 52, 8, 9, 10}));
  EXPECT_EQ(window[0].labels, (std::vector<int64_t>{-100, -100, -100, -100, -100, 9, 10}));
}

TEST(InContext, RefusesDemonstrationsTheContextCannotHold) {
  std::vector<int64_t> demos(30, 50);
  auto message = test::error_of([&] {
    with_demonstrations({example({1, 5, 6}, {-100, 5, 6}), example({1, 5}, {-100, 5})}, demos, 1, 32, "--icl-shots 3");
  });
  EXPECT_NE(message.find("--icl-shots 3: the demonstrations take 30 tokens; with the longest held-out example (3 "
                         "tokens) that exceeds the 32 positions"),
            std::string::npos)
      << message;
  EXPECT_NO_THROW(with_demonstrations({example({1, 5}, {-100, 5})}, demos, 1, 32, "K"));  // BOS + 30 + 5
}

TEST(InContext, GenerationDemonstrationsFillTheTemplateWithTheFirstReference) {
  GenerationSet train;
  train.examples = {{"name[A]", {"A is a pub.", "A: pub"}}, {"name[B]", {"B serves food."}}};
  EXPECT_EQ(generation_demonstrations(train, {1, 0}, "{source}\n"),
            "name[B]\nB serves food.\n\nname[A]\nA is a pub.\n\n");
}

}  // namespace
}  // namespace peft
