// Methods on the families beyond Llama: peft-merge writes a model directory for the rotary families, LST says
// where it is not available, and the encoders take PEFT's defaults. (Every method's invariants on every family
// are test_invariants.cpp's.)
#include <gtest/gtest.h>

#include "data/batch.h"
#include "method_testing.h"
#include "models/export.h"
#include "models/loader.h"
#include "test_util.h"

namespace peft {
namespace {

using test::method_from_yaml;

std::shared_ptr<Transformer> load(const std::string& fixture) {
  return load_transformer(test::fixture(fixture), {"float32", "cpu", 3});
}

// A fixed batch: token ids within every fixture's vocabulary, one padded row.
Batch sample_batch() {
  Batch batch;
  batch.input_ids = torch::tensor({{2, 5, 9, 3, 7, 11, 4, 8}, {2, 8, 6, 10, 12, 3, 0, 0}});
  batch.attention_mask = torch::tensor({{1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 0, 0}});
  return batch;
}

torch::Tensor outputs_of(Transformer& model, const Batch& batch) {
  torch::NoGradGuard no_grad;
  model.eval();
  return dynamic_cast<CausalLM&>(model).logits(batch.input_ids, batch.attention_mask);
}

// peft-merge on the rotary families: LoRA folded into the weights (fused projections too) and written as a model
// directory that loads alone to the adapted logits; full fine-tuning writes the same kind of directory.
class MergeOnFamily : public testing::TestWithParam<std::string> {};

TEST_P(MergeOnFamily, MergedDirectoryReproducesTheAdaptedModel) {
  torch::manual_seed(11);
  auto model = load(GetParam());
  auto method = method_from_yaml("{method: lora, r: 4, init_lora_weights: false, target_modules: all-linear}\n");
  method->attach(*model);
  Batch batch = sample_batch();
  auto adapted = outputs_of(*model, batch);
  method->merge(*model);
  std::string dir = test::temp_dir("merged-" + GetParam().substr(GetParam().find('/') + 1));
  save_model_directory(*model, test::fixture(GetParam()), dir, torch::kFloat);
  auto merged = load_transformer(dir, {"float32", "cpu"});
  auto logits = outputs_of(*merged, batch);
  EXPECT_TRUE(torch::allclose(logits, adapted, 1e-4, 1e-4)) << (logits - adapted).abs().max().item<double>();
}

INSTANTIATE_TEST_SUITE_P(Families, MergeOnFamily,
                         testing::Values("families/qwen3", "families/gemma2", "families/gemma3", "families/phi3",
                                         "families/qwen2_yarn"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param.substr(info.param.find('/') + 1);
                         });

TEST(MethodOnFamily, LstSaysWhereItIsNotAvailable) {
  for (const auto& fixture : {"families/gemma2", "families/phi3", "families/qwen3"}) {
    auto model = load(fixture);
    auto method = method_from_yaml("{method: lst}\n");
    std::string error = test::error_of([&] { method->attach(*model); });
    EXPECT_NE(error.find("lst: Ladder Side-Tuning is not available for"), std::string::npos) << error;
  }
}

TEST(MethodOnFamily, LstIsForCausalLms) {
  auto model = load("encoders/bert_tiny");
  auto method = method_from_yaml("{method: lst}\n");
  EXPECT_NE(test::error_of([&] { method->attach(*model); }).find("implemented for causal language models"),
            std::string::npos);
}

TEST(MethodOnFamily, EncoderDefaultsArePefts) {
  auto model = load("encoders/bert_tiny");
  auto lora = method_from_yaml("method: lora\n");
  lora->attach(*model);
  EXPECT_EQ(lora->targets().front(), "bert.encoder.layer.0.attention.self.query");
  EXPECT_EQ(lora->adapter_config("x")["target_modules"], nlohmann::json({"query", "value"}));
  auto other = load("encoders/roberta_tiny");
  auto ia3 = method_from_yaml("method: ia3\n");
  ia3->attach(*other);
  // PEFT's suffix rule: "output.dense" is both attention.output.dense and the FFN's output.dense.
  EXPECT_EQ(ia3->targets().size(), 2u * 4u);
}

}  // namespace
}  // namespace peft
