// Classification as text for causal LMs: templates, label words, which tokens take loss, truncation, and the
// one-line errors for verbalisers that do not fit the data.
#include <gtest/gtest.h>

#include "core/error.h"
#include "data/verbalizer.h"
#include "io/tokenizer.h"
#include "test_util.h"

namespace peft {
namespace {

using test::error_of;

ClassificationSet sentiment_set() {
  ClassificationSet set;
  set.format = "jsonl";
  set.label_names = {"negative", "positive"};
  set.examples = {{"a dull film", "", 0}, {"a joyful story", "", 1}};
  return set;
}

std::unique_ptr<Tokenizer> stories_tokenizer() {
  auto path = test::stories_tokenizer();
  return path ? load_tokenizer(*path, 1, 2) : nullptr;
}

TEST(Verbalizer, TemplatesFillTheFields) {
  Verbalizer verbalizer{"Review: {text}\nSentiment:", {" bad", " good"}};
  EXPECT_EQ(verbalizer.prompt({"a dull film", "", 0}), "Review: a dull film\nSentiment:");
  Verbalizer pair{"{text_a} Question: {text_b} True or False?", {" True", " False"}};
  EXPECT_EQ(pair.prompt({"It rains.", "Is it dry?", 1}), "It rains. Question: Is it dry? True or False?");
  auto defaults = Verbalizer::defaults(sentiment_set());
  EXPECT_EQ(defaults.template_text, "{text}\nAnswer:");
  EXPECT_EQ(defaults.label_words, (std::vector<std::string>{" negative", " positive"}));
}

TEST(Verbalizer, OnlyTheLabelWordsTakeLoss) {
  auto tokenizer = stories_tokenizer();
  ASSERT_TRUE(tokenizer);
  auto set = sentiment_set();
  Verbalizer verbalizer{"{text} It was", {" bad", " good"}};
  auto examples = verbalized_examples(set, verbalizer, *tokenizer, 64);
  ASSERT_EQ(examples.size(), 2u);
  auto prompt = tokenizer->encode("a joyful story It was");
  auto words = tokenizer->encode(" good");
  const auto& example = examples[1];
  ASSERT_EQ(example.input_ids.size(), 1 + prompt.size() + words.size());
  EXPECT_EQ(example.input_ids[0], tokenizer->bos_id());
  for (size_t i = 0; i <= prompt.size(); ++i) EXPECT_EQ(example.labels[i], kIgnoreIndex) << i;
  for (size_t i = 0; i < words.size(); ++i) EXPECT_EQ(example.labels[1 + prompt.size() + i], words[i]);

  // Candidates: one per label, in label order, each scoring that label's words after the same prompt.
  auto candidates = verbalized_candidates(set, verbalizer, *tokenizer, 64);
  ASSERT_EQ(candidates.size(), 4u);
  EXPECT_EQ(candidates[3].input_ids, example.input_ids);
  auto bad = tokenizer->encode(" bad");
  EXPECT_EQ(std::vector<int64_t>(candidates[2].labels.end() - bad.size(), candidates[2].labels.end()), bad);
}

TEST(Verbalizer, LongPromptsLoseTheirBeginning) {
  auto tokenizer = stories_tokenizer();
  ASSERT_TRUE(tokenizer);
  ClassificationSet set = sentiment_set();
  set.examples = {{std::string(400, 'a') + " the end", "", 1}};
  Verbalizer verbalizer{"{text} It was", {" bad", " good"}};
  auto example = verbalized_examples(set, verbalizer, *tokenizer, 16)[0];
  ASSERT_EQ(example.input_ids.size(), 16u);
  EXPECT_EQ(example.input_ids[0], tokenizer->bos_id());
  auto words = tokenizer->encode(" good");
  EXPECT_EQ(std::vector<int64_t>(example.input_ids.end() - words.size(), example.input_ids.end()), words);
  EXPECT_EQ(std::vector<int64_t>(example.labels.end() - words.size(), example.labels.end()), words);
}

TEST(Verbalizer, MisfitsAreOneLine) {
  auto set = sentiment_set();
  EXPECT_EQ(
      error_of([&] {
        check_verbalizer({"{text}", {" yes"}}, set, "cfg.yaml: data.verbalizers");
      }),
      "cfg.yaml: data.verbalizers: 1 label word(s) for 2 labels (one per label, in the order negative, positive)");
  EXPECT_NE(error_of([&] {
              check_verbalizer({"{txt}", {" a", " b"}}, set, "v");
            }).find("unknown placeholder {txt}"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              check_verbalizer({"Answer:", {" a", " b"}}, set, "v");
            }).find("must contain {text}"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              check_verbalizer({"{text}", {" a", " a"}}, set, "v");
            }).find("given twice"),
            std::string::npos);
  set.pairs = true;
  EXPECT_NE(error_of([&] {
              check_verbalizer({"{text_a}", {" a", " b"}}, set, "v");
            }).find("must contain {text_b}"),
            std::string::npos);
}

}  // namespace
}  // namespace peft
