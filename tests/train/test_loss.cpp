// The chunked fused head + cross-entropy against the plain composition of LibTorch operators: same loss, same
// gradients for the hidden states and (when trainable) the head, across chunk boundaries.
#include <gtest/gtest.h>

#include "train/loss.h"

namespace peft {
namespace {

struct Case {
  int64_t rows, dim, vocab;
};

class FusedLoss : public ::testing::TestWithParam<Case> {};

TEST_P(FusedLoss, MatchesFullLogitsCrossEntropy) {
  auto [rows, dim, vocab] = GetParam();
  torch::manual_seed(7);
  auto hidden = torch::randn({rows, dim}, torch::kDouble).to(torch::kFloat).requires_grad_();
  auto weight = (torch::randn({vocab, dim}) * 0.3).requires_grad_();
  auto targets = torch::randint(vocab, {rows}, torch::kLong);

  auto reference = torch::nn::functional::cross_entropy(torch::matmul(hidden, weight.t()), targets);
  reference.backward();
  auto reference_hidden_grad = hidden.grad().clone(), reference_weight_grad = weight.grad().clone();
  hidden.mutable_grad().zero_();
  weight.mutable_grad().zero_();

  auto fused = fused_linear_cross_entropy(hidden, weight, targets);
  (fused * 3.0).backward();  // an upstream factor must scale both gradients
  EXPECT_NEAR(fused.item<double>(), reference.item<double>(), 1e-5);
  EXPECT_TRUE(torch::allclose(hidden.grad(), 3.0 * reference_hidden_grad, 1e-4, 1e-6));
  EXPECT_TRUE(torch::allclose(weight.grad(), 3.0 * reference_weight_grad, 1e-4, 1e-6));

  auto per_row = token_nll(hidden, weight, targets);
  auto reference_rows = torch::nn::functional::cross_entropy(
      torch::matmul(hidden, weight.t()), targets,
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  EXPECT_TRUE(torch::allclose(per_row, reference_rows.detach(), 1e-5, 1e-5));
}

// Vocabularies large enough that the rows span several chunks (8M logits per chunk).
INSTANTIATE_TEST_SUITE_P(Shapes, FusedLoss,
                         ::testing::Values(Case{5, 8, 11}, Case{300, 16, 40000}, Case{70, 4, 200000}));

TEST(FusedLoss, FrozenHeadGetsNoGradient) {
  auto hidden = torch::randn({6, 4}).requires_grad_();
  auto weight = torch::randn({9, 4});
  auto loss = fused_linear_cross_entropy(hidden, weight, torch::tensor({0, 1, 2, 3, 4, 8}));
  loss.backward();
  EXPECT_TRUE(hidden.grad().defined());
  EXPECT_FALSE(weight.grad().defined());
}

TEST(ScoredPositions, ShiftsLabelsAndSkipsIgnored) {
  auto labels = torch::tensor({{1, 5, -100, 7}, {1, -100, 9, -100}});
  auto scored = scored_positions(labels);
  // Position t predicts label t+1: row 0 -> (0: 5), (2: 7); row 1 -> (1: 9).
  EXPECT_TRUE(torch::equal(scored.flat_index, torch::tensor({0, 2, 4})));
  EXPECT_TRUE(torch::equal(scored.targets, torch::tensor({5, 7, 9})));
  EXPECT_TRUE(torch::equal(scored.row, torch::tensor({0, 0, 1})));
}

}  // namespace
}  // namespace peft
