// KV-cached generation (models/kv_cache.h) against the uncached reference path, which re-runs the whole sequence
// every step: the same greedy tokens for every family (sliding windows, soft-capping, rope scalings, GPT-2's
// absolute positions) and every method that generation meets (LoRA unmerged and merged, (IA)³, serial and
// parallel adapters, prompt tuning's virtual tokens, prefix tuning's prefix), batched rows of different lengths
// that finish at different steps, and the cached logits equal to the forward pass's.
#include <gtest/gtest.h>

#include "eval/generate.h"
#include "models/kv_cache.h"
#include "models/loader.h"
#include "peft/method.h"
#include "peft/method_testing.h"
#include "test_util.h"

namespace peft {
namespace {

std::shared_ptr<CausalLM> load(const std::string& fixture) {
  return load_model(test::fixture(fixture), {"float32", "cpu"});
}

// Attaches `yaml`'s method and moves its parameters away from their initialisation (LoRA's B starts at zero, an
// adapter as the identity), so that the method changes what the model generates.
std::unique_ptr<Method> attach_perturbed(CausalLM& model, const std::string& yaml, uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  auto method = test::method_from_yaml(yaml);
  method->attach(model);
  torch::NoGradGuard no_grad;
  for (auto& parameter : method->trainable_parameters()) {
    parameter.tensor.add_(torch::randn_like(parameter.tensor) * 2.0);
  }
  return method;
}

GenerationOptions greedy(int64_t new_tokens, bool kv_cache) {
  GenerationOptions options;
  options.max_new_tokens = new_tokens;
  options.eos_id = -1;
  options.kv_cache = kv_cache;
  return options;
}

const std::vector<std::vector<int64_t>> kPrompts = {{1, 7, 9, 30}, {1, 12}, {1, 5, 6, 7, 8, 9, 10, 11, 3}};

// Cached and uncached generation of kPrompts, batched and one at a time, give the same tokens.
void expect_same_generation(CausalLM& model, const std::string& what, int64_t new_tokens = 12) {
  ASSERT_TRUE(model.supports_kv_cache()) << what;
  auto reference = generate_batch(model, kPrompts, greedy(new_tokens, false));
  auto cached = generate_batch(model, kPrompts, greedy(new_tokens, true));
  EXPECT_EQ(cached, reference) << what;
  for (size_t i = 0; i < kPrompts.size(); ++i) {
    EXPECT_EQ(generate(model, kPrompts[i], greedy(new_tokens, true)), reference[i]) << what << " prompt " << i;
  }
}

class CachedFamilies : public ::testing::TestWithParam<std::string> {};

TEST_P(CachedFamilies, GreedyTokensEqualTheUncachedPath) {
  auto model = load(GetParam());
  // Windows of 4-5 positions: 12 new tokens run far past them.
  expect_same_generation(*model, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CachedFamilies,
                         ::testing::Values("llama/llama_gqa_tied", "llama/llama_plain", "llama/qwen2_bias",
                                           "llama/mistral_head_dim", "families/llama3_rope",
                                           "families/llama_linear_rope", "families/qwen2_yarn",
                                           "families/mistral_sliding", "families/qwen3", "families/qwen3_sliding",
                                           "families/gemma2", "families/gemma3", "families/phi3", "gpt2/gpt2_tiny"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           auto name = info.param.substr(info.param.find('/') + 1);
                           return name;
                         });

// longrope chooses its factors by how far a pass's positions reach; prompts already past the original context
// (8) stay in one regime for the whole generation, where both paths agree. (Crossing it mid-generation, the cache
// keeps the keys rotated as they were, as transformers' cache does.)
TEST(CachedGeneration, LongropePastTheOriginalContext) {
  auto model = load("families/phi3_longrope");
  std::vector<std::vector<int64_t>> prompts = {{1, 5, 6, 7, 8, 9, 10, 11, 3}, {1, 4, 4, 9, 2, 8, 3, 5, 6, 7}};
  EXPECT_EQ(generate_batch(*model, prompts, greedy(8, true)), generate_batch(*model, prompts, greedy(8, false)));
}

struct MethodCase {
  std::string fixture, yaml;
  bool merge = false;
};

class CachedMethods : public ::testing::TestWithParam<MethodCase> {};

TEST_P(CachedMethods, GreedyTokensEqualTheUncachedPath) {
  const auto& c = GetParam();
  auto model = load(c.fixture);
  auto method = attach_perturbed(*model, c.yaml, 11);
  auto before = test::logits(*model);
  expect_same_generation(*model, c.fixture + " " + c.yaml, 10);
  if (c.merge) {
    method->merge(*model);
    expect_same_generation(*model, c.fixture + " merged " + c.yaml, 10);
  }
  // The method changes the model's function, so that the comparison above says something about it.
  auto bare = load(c.fixture);
  EXPECT_FALSE(torch::allclose(test::logits(*bare), before, 1e-3, 1e-3)) << c.yaml;
}

INSTANTIATE_TEST_SUITE_P(
    Methods, CachedMethods,
    ::testing::Values(MethodCase{"llama/llama_plain", "{method: lora, r: 4, target_modules: all-linear}", true},
                      MethodCase{"llama/llama_plain", "{method: ia3}", true},
                      MethodCase{"llama/llama_plain", "{method: adapter, placement: serial, sites: both, r: 4}"},
                      MethodCase{"llama/llama_plain", "{method: adapter, placement: parallel, sites: ffn, r: 4}"},
                      MethodCase{"llama/llama_plain", "{method: prompt_tuning, num_virtual_tokens: 3}"},
                      MethodCase{"llama/llama_plain", "{method: prefix_tuning, num_virtual_tokens: 3}"},
                      MethodCase{"families/gemma2", "{method: prefix_tuning, num_virtual_tokens: 3}"},
                      MethodCase{"families/mistral_sliding", "{method: prompt_tuning, num_virtual_tokens: 3}"},
                      MethodCase{"gpt2/gpt2_tiny", "{method: lora, r: 4, target_modules: [c_attn, c_fc]}", true},
                      MethodCase{"gpt2/gpt2_tiny", "{method: prompt_tuning, num_virtual_tokens: 3}"},
                      MethodCase{"gpt2/gpt2_tiny", "{method: prefix_tuning, num_virtual_tokens: 3}"}),
    [](const ::testing::TestParamInfo<MethodCase>& info) { return "case" + std::to_string(info.index); });

// Logits of a prefill and of the steps after it equal the forward pass's over the whole sequence, row by row,
// in a right-padded batch.
TEST(CachedGeneration, StepLogitsEqualTheForwardPass) {
  for (const std::string fixture : {"families/gemma2", "gpt2/gpt2_tiny"}) {
    auto model = load(fixture);
    auto method = attach_perturbed(*model, "{method: prefix_tuning, num_virtual_tokens: 2}", 3);
    model->eval();
    torch::NoGradGuard no_grad;
    auto ids = torch::tensor({{1, 7, 9, 30, 4}, {1, 12, 0, 0, 0}});
    auto mask = torch::tensor({{1, 1, 1, 1, 1}, {1, 1, 0, 0, 0}});
    KvCache cache(4);  // grows during the steps
    auto prefill = model->head_logits(model->decode(ids, mask, cache));
    std::vector<std::vector<int64_t>> rows = {{1, 7, 9, 30, 4}, {1, 12}};
    for (int64_t step = 0; step < 6; ++step) {
      std::vector<int64_t> next = {(step * 5 + 3) % 40 + 1, (step * 7 + 2) % 40 + 1};
      auto step_ids = torch::tensor(next).view({2, 1});
      auto logits = model->head_logits(model->decode(step_ids, torch::ones_like(step_ids), cache)).select(1, 0);
      for (size_t r = 0; r < rows.size(); ++r) {
        rows[r].push_back(next[r]);
        auto whole = torch::tensor(rows[r]).unsqueeze(0);
        auto expected = model->logits(whole, torch::ones_like(whole))[0][-1];
        EXPECT_TRUE(torch::allclose(logits[static_cast<int64_t>(r)], expected, 1e-5, 1e-5))
            << fixture << " step " << step << " row " << r;
      }
    }
    auto whole = torch::tensor(rows[1]).narrow(0, 0, 2).unsqueeze(0);
    EXPECT_TRUE(torch::allclose(prefill[1][1], model->logits(whole, torch::ones_like(whole))[0][-1], 1e-5, 1e-5))
        << fixture;
  }
}

// Rows that stop early (an end token, the model's length limit) leave the batch; the others go on unchanged.
TEST(CachedGeneration, RowsFinishingAtDifferentSteps) {
  auto model = load("llama/llama_gqa_tied");
  auto reference = generate_batch(*model, kPrompts, greedy(12, false));
  auto options = greedy(12, true);
  options.eos_id = reference[1][2];  // row 1 ends after its third token (others may too)
  auto uncached = options;
  uncached.kv_cache = false;
  EXPECT_EQ(generate_batch(*model, kPrompts, options), generate_batch(*model, kPrompts, uncached));

  // A prompt two positions short of max_position_embeddings (128) stops after two tokens; a short one goes on.
  std::vector<int64_t> long_prompt(126, 5);
  long_prompt[0] = 1;
  std::vector<std::vector<int64_t>> prompts = {long_prompt, {1, 12}};
  auto cached = generate_batch(*model, prompts, greedy(6, true));
  EXPECT_EQ(cached[0].size(), 2u);
  EXPECT_EQ(cached[1].size(), 6u);
  EXPECT_EQ(cached, generate_batch(*model, prompts, greedy(6, false)));
}

// The real pretrained stories260K: 200 greedy tokens, the same either way.
TEST(CachedGeneration, Stories260KLongGeneration) {
  auto model = load_model(test::source_dir() + "/third_party/stories260K-hf", {"float32", "cpu"});
  std::vector<int64_t> prompt = {1, 403, 407, 261, 378, 342, 263};
  EXPECT_EQ(generate(*model, prompt, greedy(200, true)), generate(*model, prompt, greedy(200, false)));
}

// Models whose stack a method replaces (Ladder Side-Tuning) have no cache: generation takes the uncached path.
TEST(CachedGeneration, LadderSideTuningFallsBackToTheUncachedPath) {
  auto model = load_model(test::source_dir() + "/third_party/stories260K-hf", {"float32", "cpu"});
  auto method = test::method_from_yaml("{method: lst, reduction_factor: 4}");
  method->attach(*model);
  EXPECT_FALSE(model->supports_kv_cache());
  EXPECT_EQ(generate_batch(*model, kPrompts, greedy(4, true)), generate_batch(*model, kPrompts, greedy(4, false)));
}

}  // namespace
}  // namespace peft
