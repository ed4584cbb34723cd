// The FLOP count against hand-computed figures for the embedded stories260K (5 layers, hidden 64, 8 heads of 8, 4
// key/value heads, feed-forward 172, vocabulary 512, head tied to the embeddings).
#include <gtest/gtest.h>

#include "eval/flops.h"
#include "models/loader.h"
#include "peft/method.h"
#include "peft/method_testing.h"
#include "test_util.h"

namespace peft {
namespace {

std::shared_ptr<Model> stories() {
  return load_base_model(test::source_dir() + "/third_party/stories260K-hf", {"float32", "cpu"});
}

// The count of stories260K with the method `yaml` attached.
FlopCount count_with(const std::string& yaml) {
  auto model = stories();
  auto base = count_flops(*model);
  auto method = test::method_from_yaml(yaml);
  method->attach(*model);
  return with_method(base, *method, *model);
}

// Per layer q 64·64, k and v 64·32, o 64·64, gate and up 64·172, down 172·64; the head, tied, 64·512.
constexpr int64_t kBaseWeights = 5 * (4096 + 2048 + 2048 + 4096 + 3 * 11008);
constexpr int64_t kHeadWeights = 64 * 512;

TEST(Flops, CountsTheBaseFromItsShapes) {
  auto model = stories();
  auto count = count_flops(*model);
  EXPECT_EQ(count.base_weights, kBaseWeights);
  EXPECT_EQ(count.head_weights, kHeadWeights);
  EXPECT_EQ(count.layers, 5);
  EXPECT_EQ(count.attention_width, 64);
  // 2 per weight per token, the head at the scored positions only, plus QKᵀ and AV: 4·L·T·T·width.
  EXPECT_DOUBLE_EQ(count.forward(10, 3), 2.0 * 10 * kBaseWeights + 2.0 * 3 * kHeadWeights + 4.0 * 5 * 10 * 10 * 64);
  // Full fine-tuning's backward is twice its forward: the classic 3x rule.
  EXPECT_DOUBLE_EQ(count_with("{method: full}").training(10, 3), 3.0 * count.forward(10, 3));
}

TEST(Flops, LoraAddsItsMatricesAndSkipsTheBaseWeightGradients) {
  auto count = count_with("{method: lora, r: 8, target_modules: [q_proj, v_proj]}");
  int64_t lora_weights = 5 * (8 * (64 + 64) + 8 * (64 + 32));
  EXPECT_EQ(count.method_weights, lora_weights);
  double t = 12, attention = 4.0 * 5 * t * t * 64, head = 2.0 * 4 * kHeadWeights;
  double forward = 2.0 * t * (kBaseWeights + lora_weights) + head + attention;
  EXPECT_DOUBLE_EQ(count.forward(12, 4), forward);
  // Backward: activation gradients through everything, weight gradients for LoRA's matrices only.
  EXPECT_DOUBLE_EQ(count.training(12, 4),
                   forward + 2.0 * t * (kBaseWeights + lora_weights) + head + 2.0 * attention + 2.0 * t * lora_weights);
}

TEST(Flops, PromptAndPrefixTuningLengthenTheSequence) {
  auto base = count_flops(*stories());
  auto count = count_with("{method: prompt_tuning, num_virtual_tokens: 6}");
  EXPECT_EQ(count.method_weights, 0);
  EXPECT_DOUBLE_EQ(count.forward(10, 2), base.forward(16, 2));
  auto with_prefix = count_with("{method: prefix_tuning, num_virtual_tokens: 4}");
  EXPECT_DOUBLE_EQ(with_prefix.forward(10, 2),
                   2.0 * 10 * kBaseWeights + 2.0 * 2 * kHeadWeights + 4.0 * 5 * 10 * (10 + 4) * 64);
}

TEST(Flops, LadderSideTuningDoesNotBackpropagateThroughTheBackbone) {
  auto count = count_with("{method: lst, reduction_factor: 4}");
  EXPECT_FALSE(count.backward_through_base);
  EXPECT_GT(count.method_weights, 0);
  double t = 10;
  // Backward: the side network's activation and weight gradients only.
  EXPECT_DOUBLE_EQ(count.training(10, 9), count.forward(10, 9) + 4.0 * t * count.method_weights);
  EXPECT_LT(count.training(10, 9), 2.0 * count.forward(10, 9));
}

TEST(Flops, GenerationAppliesTheHeadAtTheLastPositionOfEveryRerun) {
  auto model = stories();
  auto count = count_flops(*model);
  EXPECT_DOUBLE_EQ(generation_flops(count, 5, 3), count.forward(5, 1) + count.forward(6, 1) + count.forward(7, 1));
  EXPECT_DOUBLE_EQ(generation_flops(count, 5, 0), 0.0);
  // A loss applies it at the scored positions: labels after the first that are not -100.
  std::vector<Example> examples(2);
  examples[0] = {{1, 2, 3}, {-100, 2, 3}};
  examples[1] = {{1, 2, 3, 4, 5}, {-100, -100, -100, 4, 5}};
  EXPECT_EQ(head_positions(examples[0]), 2);
  EXPECT_DOUBLE_EQ(forward_flops(count, examples), count.forward(3, 2) + count.forward(5, 2));
}

}  // namespace
}  // namespace peft
