// SPoT: the two similarity measures, prompt transfer (copy, weighted, best) and its checks, and peft-similarity.
#include <gtest/gtest.h>

#include "method_testing.h"
#include "peft/adapter_io.h"
#include "peft/lora.h"
#include "peft/prompt_tuning.h"
#include "peft/spot.h"

namespace peft {
namespace {

using test::error_of;
using test::fixture_model;

TEST(Spot, SimilarityMeasures) {
  auto a = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}});
  auto b = torch::tensor({{1.0f, 0.0f}, {1.0f, 0.0f}});
  EXPECT_NEAR(mean_cosine(a, b), std::sqrt(0.5), 1e-6);                // cos((.5, .5), (1, 0))
  EXPECT_NEAR(token_cosine(a, b), 0.5, 1e-6);                          // pairs: 1, 1, 0, 0
  EXPECT_NEAR(token_cosine(a, a), 0.5, 1e-6);                          // orthogonal tokens count too
  auto c = torch::tensor({{2.0f, 0.0f}, {0.0f, 2.0f}, {1.0f, 1.0f}});  // lengths may differ
  EXPECT_NEAR(mean_cosine(a, c), 1.0, 1e-6);
  EXPECT_NE(error_of([&] { prompt_similarity("l2", a, b); }).find("unknown similarity 'l2'"), std::string::npos);
}

// A saved prompt-tuning adapter of `l` tokens whose prompt is `table` (l, 24).
std::string save_prompt(const torch::Tensor& table) {
  auto model = fixture_model("llama_gqa_tied");
  auto options = std::make_shared<PromptTuningOptions>();
  options->num_virtual_tokens = table.size(0);
  auto method = make_prompt_tuning(options);
  method->attach(*model);
  method->load_adapter_tensors({{"prompt_embeddings", table}});
  std::string dir = test::temp_dir("spot-prompt");
  save_adapter(dir, *method, "llama_gqa_tied");
  return dir;
}

torch::Tensor prompt_from(const std::shared_ptr<PromptTuningOptions>& options) {
  auto model = fixture_model("llama_gqa_tied");
  auto method = make_prompt_tuning(options);
  method->attach(*model);
  return method->adapter_tensors().at("prompt_embeddings");
}

TEST(Spot, InitFromCopiesTheSourcePrompt) {
  auto source = torch::randn({6, 24});
  auto options = std::make_shared<PromptTuningOptions>();
  options->num_virtual_tokens = 6;
  options->init_from = {false, save_prompt(source), {}};
  EXPECT_TRUE(torch::equal(prompt_from(options), source));

  options->num_virtual_tokens = 8;
  std::string message = error_of([&] { prompt_from(options); });
  EXPECT_NE(message.find("its prompt is 6 × 24, this one is 8 × 24"), std::string::npos) << message;
}

TEST(Spot, WeightedAndBestCombinations) {
  torch::manual_seed(7);
  auto target_table = torch::randn({3, 24});
  auto close = target_table.mean(0).repeat({6, 1}) + 0.1 * torch::randn({6, 24});  // mean-pooled ≈ the target's
  auto far = -close + 0.1 * torch::randn({6, 24});                                 // opposite: weight 0
  auto middle = close + 2.0 * torch::randn({6, 24});                               // partly similar
  std::vector<std::string> dirs = {save_prompt(far), save_prompt(middle), save_prompt(close)};
  auto target = save_prompt(target_table);

  auto options = std::make_shared<PromptTuningOptions>();
  options->num_virtual_tokens = 6;
  options->init_from = {true, "", dirs};
  options->target_prompt = target;
  std::vector<double> weights;
  double total = 0;
  for (const auto& table : {far, middle, close}) {
    weights.push_back(std::max(mean_cosine(target_table, table), 0.0));
    total += weights.back();
  }
  EXPECT_EQ(weights[0], 0.0);
  EXPECT_GT(weights[1], 0.05);
  EXPECT_LT(weights[1], weights[2]);
  auto expected = (weights[0] * far + weights[1] * middle + weights[2] * close) / total;
  EXPECT_TRUE(torch::allclose(prompt_from(options), expected, 1e-5, 1e-6));

  options->combine = "best";
  EXPECT_TRUE(torch::equal(prompt_from(options), close));

  auto ranked = rank_prompts(read_saved_prompt(target), read_prompt_library(dirs), "mean_cosine");
  ASSERT_EQ(ranked.size(), 3u);
  EXPECT_EQ(ranked.front().directory, dirs[2]);
  EXPECT_EQ(ranked.back().directory, dirs[0]);
}

TEST(Spot, OnlyPromptTuningAdaptersAreSources) {
  auto model = fixture_model("llama_gqa_tied");
  auto lora = make_lora(std::make_shared<LoraOptions>());
  lora->attach(*model);
  std::string dir = test::temp_dir("spot-lora");
  save_adapter(dir, *lora, "llama_gqa_tied");
  EXPECT_NE(error_of([&] { read_saved_prompt(dir); }).find("peft_type is 'LORA', not PROMPT_TUNING"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_prompt_library({"/nonexistent"}); }).find("prompt library entry not found"),
            std::string::npos);
}

}  // namespace
}  // namespace peft
