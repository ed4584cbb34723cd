// Llama-family forward parity against logits from the independent reference
// (scripts/reference/make_llama_fixtures.py, float64 torch written from the HF semantics).
#include <gtest/gtest.h>

#include <filesystem>

#include "io/safetensors.h"
#include "models/loader.h"
#include "models/parity_testing.h"
#include "peft/adapter_io.h"
#include "test_util.h"

namespace peft {
namespace {

using test::Expected;
using test::logits_of;
using test::read_expected;
using test::relative_error;

class LlamaParity : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaParity, MatchesReferenceLogits) {
  std::string dir = test::fixture("llama/" + GetParam());
  auto model = load_model(dir, {"float32", "cpu"});
  auto expected = read_expected(dir + "/expected.safetensors");
  EXPECT_LT(relative_error(logits_of(*model, expected), expected), 2e-5) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LlamaParity,
                         ::testing::Values("llama_plain", "llama_gqa_tied", "qwen2_bias", "mistral_head_dim",
                                           "llama_mlp_bias", "llama_bf16", "llama_f16", "llama_sharded"));

TEST(LlamaParity, BFloat16ComputeStaysClose) {
  std::string dir = test::fixture("llama/llama_bf16");
  auto model = load_model(dir, {"bfloat16", "cpu"});
  auto expected = read_expected(dir + "/expected.safetensors");
  auto logits = logits_of(*model, expected);
  EXPECT_EQ(logits.scalar_type(), torch::kBFloat16);
  EXPECT_LT(relative_error(logits, expected), 0.05);
}

TEST(LlamaParity, PaddingDoesNotChangeRealPositions) {
  std::string dir = test::fixture("llama/llama_gqa_tied");
  auto model = load_model(dir, {"float32", "cpu"});
  auto expected = read_expected(dir + "/expected.safetensors");
  // Row 1 is right-padded: running it alone, unpadded, gives the same logits at its real positions.
  auto alone = test::row_alone(expected, 1);
  EXPECT_LT(relative_error(logits_of(*model, alone), alone), 2e-5);
}

TEST(LlamaParity, Stories260KMatchesReference) {
  std::string dir = test::source_dir() + "/third_party/stories260K-hf";
  auto model = load_model(dir, {"float32", "cpu"});
  auto file = safetensors::File::open(test::fixture("llama/stories260K_expected.safetensors"));
  Expected expected{file->tensor("input_ids").clone(), torch::ones_like(file->tensor("input_ids")),
                    file->tensor("logits").clone()};
  EXPECT_LT(relative_error(logits_of(*model, expected), expected), 2e-5);
}

class LoraFixture : public ::testing::TestWithParam<std::string> {};

// An HF PEFT adapter directory written by the reference loads and reproduces the reference's adapted logits.
TEST_P(LoraFixture, AdaptedLogitsMatchReference) {
  auto model = load_model(test::fixture("llama/llama_plain"), {"float32", "cpu"});
  std::string adapter = test::fixture("llama/" + GetParam());
  auto method = load_adapter(adapter, *model);
  auto expected = read_expected(adapter + "/expected.safetensors");
  EXPECT_LT(relative_error(logits_of(*model, expected), expected), 2e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LoraFixture, ::testing::Values("llama_plain_lora", "llama_plain_rslora"));

class PromptLearningFixture : public ::testing::TestWithParam<std::string> {};

// HF PEFT prompt-tuning and prefix-tuning adapters written by the reference (GQA model, one padded row):
// virtual-token positions, the extended masks and the unrotated per-KV-head prefix all agree with it.
TEST_P(PromptLearningFixture, AdaptedLogitsMatchReference) {
  auto model = load_model(test::fixture("llama/llama_gqa_tied"), {"float32", "cpu"});
  std::string adapter = test::fixture("llama/" + GetParam());
  auto method = load_adapter(adapter, *model);
  auto expected = read_expected(adapter + "/expected.safetensors");
  EXPECT_LT(relative_error(logits_of(*model, expected), expected), 2e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PromptLearningFixture,
                         ::testing::Values("llama_gqa_tied_prompt", "llama_gqa_tied_prefix"));

// A Ladder Side-Tuning adapter written by the reference (head_dim × heads ≠ hidden size, GQA, untied head, one
// padded row, gates away from zero): the backbone's ladders, the side blocks at head dim d_h/r with their own
// rotary tables, the side norm and Up into the frozen head all agree with it.
TEST(LstFixture, AdaptedLogitsMatchReference) {
  auto model = load_model(test::fixture("llama/mistral_head_dim"), {"float32", "cpu"});
  std::string adapter = test::fixture("llama/mistral_head_dim_lst");
  auto method = load_adapter(adapter, *model);
  model->eval();
  auto expected = read_expected(adapter + "/expected.safetensors");
  EXPECT_LT(relative_error(logits_of(*model, expected), expected), 2e-5);
}

}  // namespace
}  // namespace peft
