// Mixed precision: a 16-bit base computes in its dtype while the methods' own trainable parameters (the master
// weights the optimiser updates) and their gradients stay float32, and the saved adapter is float32 (BitFit and
// full fine-tuning train the base's own tensors, in its dtype: tests/peft/test_bitfit.cpp); float16's
// dynamic loss scale grows, backs off on overflow and unscales exactly; float16 on the CPU is one clear error.
#include <gtest/gtest.h>

#include "config/run_config.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "peft/method.h"
#include "peft/method_testing.h"
#include "test_util.h"
#include "train/loss_scaler.h"
#include "train/trainer.h"

namespace peft {
namespace {

class BFloat16Base : public testing::TestWithParam<std::string> {};

TEST_P(BFloat16Base, TrainableParametersAndGradientsAreFloat32) {
  torch::manual_seed(5);
  auto model = test::fixture_model("llama_mlp_bias", "bfloat16");
  auto method = test::method_from_yaml(GetParam());
  method->attach(*model);
  auto trainable = method->trainable_parameters();
  ASSERT_FALSE(trainable.empty());
  for (const auto& parameter : trainable) EXPECT_EQ(parameter.tensor.scalar_type(), torch::kFloat) << GetParam();
  for (const auto& item : model->named_parameters()) {
    if (!item.value().requires_grad()) {
      EXPECT_EQ(item.value().scalar_type(), torch::kBFloat16) << item.key();
    }
  }
  test::backward_on_sample(*model);
  int with_gradient = 0;
  for (const auto& parameter : trainable) {
    const auto& grad = parameter.tensor.grad();
    if (!grad.defined()) continue;
    ++with_gradient;
    EXPECT_EQ(grad.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::isfinite(grad).all().item<bool>());
  }
  EXPECT_GT(with_gradient, 0) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Methods, BFloat16Base,
                         testing::Values("{method: lora, r: 4}", "{method: ia3}",
                                         "{method: adapter, placement: parallel, sites: both, r: 4, init: lora}",
                                         "{method: prompt_tuning, num_virtual_tokens: 2, init: random}",
                                         "{method: prefix_tuning, num_virtual_tokens: 2, prefix_projection: true, "
                                         "encoder_hidden_size: 8}"));

TEST(MixedPrecision, AdapterTrainedOnABFloat16BaseIsSavedAsFloat32) {
  std::string dir = test::temp_dir("bf16-run");
  std::string train = test::write_text(dir + "/train.jsonl",
                                       "{\"text\": \"Once upon a time there was a cat.\"}\n"
                                       "{\"text\": \"Tom had a red ball. He liked to play.\"}\n");
  std::string config =
      test::write_text(dir + "/run.yaml", "model: {path: " + test::source_dir() + "/third_party/stories260K-hf" +
                                              ", device: cpu, dtype: bfloat16}\ndata: {train: " + train +
                                              ", max_length: 32}\npeft: {method: lora, r: 4}\n"
                                              "train: {max_steps: 3, batch_size: 2, learning_rate: 0.01, threads: 1}\n"
                                              "output: {dir: " +
                                              dir + "/out}\n");
  Trainer trainer(RunConfig::load(config));
  trainer.setup();
  trainer.train();
  trainer.save();
  auto adapter = safetensors::File::open(dir + "/out/adapter_model.safetensors");
  ASSERT_FALSE(adapter->names().empty());
  for (const auto& [name, info] : adapter->tensors()) EXPECT_EQ(info.dtype_name, "F32") << name;
}

TEST(MixedPrecision, Float16OnTheCpuIsOneClearError) {
  std::string message = test::error_of([] { load_base_model(test::fixture("llama/llama_f16"), {"float16", "cpu"}); });
  EXPECT_NE(message.find("model.dtype float16 needs a GPU"), std::string::npos) << message;
  EXPECT_NE(message.find("use bfloat16"), std::string::npos) << message;
}

TEST(LossScaler, DisabledIsTheIdentity) {
  LossScaler scaler(false);
  auto loss = torch::tensor(2.5);
  EXPECT_TRUE(torch::equal(scaler.scaled(loss), loss));
  auto p = torch::ones({2}, torch::requires_grad());
  p.mutable_grad() = torch::full({2}, std::numeric_limits<float>::infinity());
  EXPECT_TRUE(scaler.unscale_and_update({p}));  // the non-finite checks are the trainer's then
  EXPECT_EQ(scaler.scale(), 1.0);
}

TEST(LossScaler, UnscalesBacksOffOnOverflowAndGrows) {
  LossScaler scaler(true, 1024.0, 3);
  EXPECT_DOUBLE_EQ(scaler.scaled(torch::tensor(0.5)).item<double>(), 512.0);
  auto p = torch::ones({3}, torch::requires_grad());
  auto q = torch::ones({2}, torch::requires_grad());  // no gradient: left alone
  p.mutable_grad() = torch::tensor({1024.0f, -2048.0f, 512.0f});
  EXPECT_TRUE(scaler.unscale_and_update({p, q}));
  EXPECT_TRUE(torch::equal(p.grad(), torch::tensor({1.0f, -2.0f, 0.5f})));
  EXPECT_EQ(scaler.good_steps(), 1);

  p.mutable_grad() = torch::tensor({1.0f, std::numeric_limits<float>::infinity(), 0.0f});
  EXPECT_FALSE(scaler.unscale_and_update({p, q}));
  EXPECT_EQ(scaler.scale(), 512.0);
  EXPECT_EQ(scaler.good_steps(), 0);

  for (int i = 0; i < 3; ++i) {
    p.mutable_grad() = torch::ones({3});
    EXPECT_TRUE(scaler.unscale_and_update({p}));
  }
  EXPECT_EQ(scaler.scale(), 1024.0);  // three good steps in a row doubled it
  EXPECT_EQ(scaler.good_steps(), 0);

  scaler.restore(2.0, 1);
  p.mutable_grad() = torch::tensor({std::nanf(""), 0.0f, 0.0f});
  EXPECT_FALSE(scaler.unscale_and_update({p}));
  p.mutable_grad() = torch::tensor({std::nanf(""), 0.0f, 0.0f});
  EXPECT_FALSE(scaler.unscale_and_update({p}));
  EXPECT_EQ(scaler.scale(), 1.0);  // never below 1: a persistent overflow there is a real non-finite gradient
}

}  // namespace
}  // namespace peft
