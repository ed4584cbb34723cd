// Sequence packing: every example lands whole in exactly one row of at most max_length tokens, no example
// predicts the next one's first token, collate numbers a row's examples in its attention mask, and the packing is
// deterministic.
#include <gtest/gtest.h>

#include <set>

#include "core/error.h"
#include "data/batch.h"
#include "data/packing.h"
#include "test_util.h"

namespace peft {
namespace {

Example example_of_length(int64_t length, int64_t first_token) {
  Example example;
  for (int64_t i = 0; i < length; ++i) example.input_ids.push_back(first_token + i);
  example.labels = example.input_ids;
  example.labels[0] = kIgnoreIndex;  // e.g. a prompt's tokens take no loss
  return example;
}

TEST(Packing, EveryExampleOnceWholeAndRowsWithinTheLimit) {
  std::vector<Example> examples;
  const std::vector<int64_t> lengths = {7, 3, 10, 2, 5, 9, 1, 4, 6, 8};
  for (size_t i = 0; i < lengths.size(); ++i) examples.push_back(example_of_length(lengths[i], 100 * (i + 1)));
  auto packed = pack_examples(examples, 10);
  // 55 tokens in rows of 10: best-fit decreasing fills six rows, the fewest possible.
  EXPECT_EQ(packed.rows.size(), 6u);
  std::multiset<size_t> seen;
  for (size_t row = 0; row < packed.rows.size(); ++row) {
    const auto& packed_row = packed.rows[row];
    EXPECT_LE(packed_row.input_ids.size(), 10u);
    ASSERT_EQ(packed_row.segment_lengths.size(), packed.members[row].size());
    size_t offset = 0;
    for (size_t k = 0; k < packed.members[row].size(); ++k) {
      size_t index = packed.members[row][k];
      seen.insert(index);
      const auto& original = examples[index];
      ASSERT_EQ(packed_row.segment_lengths[k], static_cast<int64_t>(original.input_ids.size()));
      for (size_t t = 0; t < original.input_ids.size(); ++t) {
        EXPECT_EQ(packed_row.input_ids[offset + t], original.input_ids[t]);
        // The first token of each example is never a target; the rest keep their labels.
        EXPECT_EQ(packed_row.labels[offset + t], t == 0 ? kIgnoreIndex : original.labels[t]);
      }
      offset += original.input_ids.size();
    }
    EXPECT_EQ(offset, packed_row.input_ids.size());
  }
  EXPECT_EQ(seen.size(), examples.size());
  EXPECT_EQ(std::set<size_t>(seen.begin(), seen.end()).size(), examples.size());

  auto again = pack_examples(examples, 10);
  EXPECT_EQ(again.members, packed.members);
}

TEST(Packing, CollateNumbersTheExamplesOfARow) {
  std::vector<Example> examples = {example_of_length(3, 10), example_of_length(2, 20), example_of_length(4, 30)};
  auto packed = pack_examples(examples, 6);
  ASSERT_EQ(packed.rows.size(), 2u);  // [4, 2] and [3]
  std::vector<const Example*> rows = {&packed.rows[0], &packed.rows[1]};
  Batch batch = collate(rows, 0);
  EXPECT_TRUE(torch::equal(batch.attention_mask, torch::tensor({{1, 1, 1, 1, 2, 2}, {1, 1, 1, 0, 0, 0}})));
  EXPECT_EQ(batch.tokens, 9);
  // Scored tokens: each example's own (its first token never counts), 3 + 1 + 2.
  EXPECT_EQ(batch.scored_tokens, 3 + 1 + 2);
}

TEST(Packing, RefusesWhatCannotBePacked) {
  std::vector<Example> too_long = {example_of_length(12, 1)};
  EXPECT_NE(test::error_of([&] { pack_examples(too_long, 10); }).find("cannot pack example 1"), std::string::npos);
  Example encoder = example_of_length(4, 1);
  encoder.token_type_ids = {0, 0, 1, 1};
  std::vector<Example> encoders = {encoder};
  EXPECT_NE(test::error_of([&] { pack_examples(encoders, 10); }).find("only language-modelling examples"),
            std::string::npos);
}

}  // namespace
}  // namespace peft
