#include <gtest/gtest.h>

#include "compare/weight_change.h"
#include "models/loader.h"
#include "peft/method.h"
#include "peft/method_testing.h"
#include "test_util.h"

namespace peft {
namespace {

std::shared_ptr<Model> stories() {
  return load_base_model(test::source_dir() + "/third_party/stories260K-hf", {"float32", "cpu"});
}

TEST(NumericalRank, CountsTheDirectionsOfAKnownProduct) {
  torch::manual_seed(0);
  auto w = torch::randn({64, 48});
  auto delta = torch::matmul(torch::randn({64, 3}), torch::randn({3, 48})) * 1e-2;
  EXPECT_EQ(numerical_rank(delta, w + delta), 3);
  EXPECT_EQ(numerical_rank(torch::zeros({64, 48}), w), 0);
  EXPECT_EQ(numerical_rank(torch::randn({16, 16}), w), 16);
}

TEST(NumericalRank, RoundingOfTheStoredWeightIsNoDirection) {
  torch::manual_seed(1);
  auto w = torch::randn({64, 64});
  auto delta = torch::matmul(torch::randn({64, 2}), torch::randn({2, 64})) * 1e-3;
  // Stored in float32, W + ΔW rounds every element: the difference read back has a full-rank noise part.
  auto after = w + delta;
  auto read_back = after.to(torch::kDouble) - w.to(torch::kDouble);
  EXPECT_EQ(numerical_rank(read_back, after), 2);
}

// A method trained a little (its zero-initialised half made non-zero), then merged: the change it made to the base.
WeightChange merged_change(const std::string& yaml) {
  auto base = stories();
  auto model = stories();
  auto method = test::method_from_yaml(yaml);
  method->attach(*model);
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : method->trainable_parameters())
      parameter.tensor.add_(torch::randn_like(parameter.tensor) * 1e-2);
  }
  method->merge(*model);
  return weight_change(*base, *model);
}

TEST(WeightChange, LoraChangesWholeMatricesWithinItsRank) {
  torch::manual_seed(2);
  auto change = merged_change("{method: lora, r: 4, target_modules: [q_proj, v_proj]}");
  // Every element of q and v, but for the odd one whose change is below float32's rounding of it.
  EXPECT_LE(change.changed, 5 * (64 * 64 + 32 * 64));
  EXPECT_GE(change.changed, 5 * (64 * 64 + 32 * 64) - 10);
  ASSERT_EQ(change.ranks.size(), 10u);
  EXPECT_EQ(change.rank_max(), 4);
  EXPECT_EQ(change.rank_median(), 4);
}

TEST(WeightChange, Ia3RescalesRowsAndBitFitOnlyBiases) {
  torch::manual_seed(3);
  auto ia3 = merged_change("{method: ia3, target_modules: [k_proj], feedforward_modules: []}");
  EXPECT_EQ(ia3.changed, 5 * 32 * 64);  // every row of k_proj is rescaled
  ASSERT_EQ(ia3.ranks.size(), 5u);
  EXPECT_EQ(ia3.rank_max(), 32);  // diag(l − 1)·W has W's rank

  auto bitfit = merged_change("{method: bitfit, biases: subset, target_modules: [q_proj]}");
  EXPECT_EQ(bitfit.changed, 5 * 64);  // the biases BitFit added to q_proj
  EXPECT_TRUE(bitfit.ranks.empty());
}

}  // namespace
}  // namespace peft
