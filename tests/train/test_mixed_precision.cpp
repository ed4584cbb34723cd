// Mixed precision: a 16-bit base computes in its dtype while the methods' own trainable parameters and their
// gradients stay float32, and the saved adapter is float32; base tensors that are trained (BitFit's biases, full
// fine-tuning's weights) keep their 16-bit dtype in the model and are optimised through float32 master copies,
// which a checkpoint holds and a resume continues from; float16's dynamic loss scale grows, backs off on overflow
// and unscales exactly; float16 on the CPU is one clear error.
#include <gtest/gtest.h>

#include "config/run_config.h"
#include "io/safetensors.h"
#include "models/loader.h"
#include "peft/method.h"
#include "peft/method_testing.h"
#include "test_util.h"
#include "train/loss_scaler.h"
#include "train/master_weights.h"
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

TEST(MasterWeights, SmallUpdatesAccumulateInFloat32WhereBFloat16AloneRoundsThemAway) {
  auto weight = torch::ones({4}, torch::kBFloat16).requires_grad_();
  auto bias = torch::zeros({2}).requires_grad_();  // float32: its own master
  MasterWeights masters({{"w", weight, true}, {"b", bias, false}});
  ASSERT_EQ(masters.optimised().size(), 2u);
  EXPECT_EQ(masters.separate_count(), 1);
  EXPECT_EQ(masters.separate_bytes(), 16);
  EXPECT_EQ(masters.optimised()[0].name, "w");
  EXPECT_EQ(masters.optimised()[0].tensor.scalar_type(), torch::kFloat);
  EXPECT_TRUE(masters.optimised()[1].tensor.is_same(bias));
  EXPECT_FALSE(masters.optimised()[1].weight_decay);

  auto options = torch::optim::AdamWOptions(1e-3).weight_decay(0.0);
  torch::optim::AdamW optimizer(masters.optimised_tensors(), options);
  auto bare = torch::ones({4}, torch::kBFloat16).requires_grad_();  // the same updates without a master
  torch::optim::AdamW bare_optimizer(std::vector<torch::Tensor>{bare}, options);
  for (int step = 0; step < 20; ++step) {
    for (int micro = 0; micro < 2; ++micro) {  // two accumulated backward passes, each a gradient of 1
      (weight.sum() + bias.sum()).backward();
      masters.accumulate_gradients();
      EXPECT_FALSE(weight.grad().defined());  // moved into the master, not kept twice
    }
    if (step == 0) {
      EXPECT_TRUE(torch::equal(masters.optimised()[0].tensor.grad(), torch::full({4}, 2.0f)));
      EXPECT_TRUE(torch::equal(bias.grad(), torch::full({2}, 2.0f)));
    }
    optimizer.step();
    optimizer.zero_grad();
    masters.masters_to_model();
    bare.sum().backward();
    bare_optimizer.step();
    bare_optimizer.zero_grad();
  }
  // AdamW's step under a constant gradient is the learning rate: 20 steps of 1e-3 from 1, each below half of
  // bfloat16's spacing under 1 (2^-9), so bfloat16 alone stays at 1.
  auto master = masters.optimised()[0].tensor.detach();
  EXPECT_TRUE(torch::allclose(master, torch::full({4}, 0.98f), 0.0, 1e-5)) << master;
  EXPECT_TRUE(torch::equal(weight.detach(), master.to(torch::kBFloat16)));
  EXPECT_FALSE(torch::equal(weight.detach(), torch::ones({4}, torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(bare.detach(), torch::ones({4}, torch::kBFloat16)));
  EXPECT_TRUE(torch::allclose(bias.detach(), torch::full({2}, -0.02f), 0.0, 1e-5));

  {
    torch::NoGradGuard no_grad;
    weight.fill_(0.5);
  }
  masters.model_to_masters();
  EXPECT_TRUE(torch::equal(masters.optimised()[0].tensor.detach(), torch::full({4}, 0.5f)));
}

// Full fine-tuning of a bfloat16 base with a learning rate whose steps are mostly below bfloat16's resolution of
// the weights: the checkpoint's float32 masters hold the updates, the model holds them rounded, and resuming from a
// checkpoint continues exactly as the uninterrupted run.
TEST(MixedPrecision, FullFineTuningOfABFloat16BaseKeepsFloat32MastersAcrossAResume) {
  std::string dir = test::temp_dir("bf16-full");
  std::string train = test::write_text(dir + "/train.jsonl",
                                       "{\"text\": \"Once upon a time there was a cat.\"}\n"
                                       "{\"text\": \"Tom had a red ball. He liked to play.\"}\n"
                                       "{\"text\": \"The sun was warm and the sky was blue.\"}\n");
  std::string config = test::write_text(
      dir + "/run.yaml", "model: {path: " + test::source_dir() + "/third_party/stories260K-hf" +
                             ", device: cpu, dtype: bfloat16}\ndata: {train: " + train +
                             ", max_length: 32}\npeft: {method: full}\n"
                             "train: {max_steps: 4, batch_size: 2, learning_rate: 1.0e-5, save_every: 2, "
                             "threads: 1}\noutput: {dir: " +
                             dir + "/out}\n");
  std::map<std::string, torch::Tensor> base, model_after;
  {
    Trainer trainer(RunConfig::load(config));
    trainer.setup();
    for (const auto& parameter : trainer.method().trainable_parameters()) {
      ASSERT_EQ(parameter.tensor.scalar_type(), torch::kBFloat16) << parameter.name;
      base[parameter.name] = parameter.tensor.detach().clone();
    }
    trainer.train();
    for (const auto& parameter : trainer.method().trainable_parameters()) {
      model_after[parameter.name] = parameter.tensor.detach().clone();
    }
  }
  auto read_masters = [&](const std::string& checkpoint) {
    auto file = safetensors::File::open(dir + "/out/" + checkpoint + "/trainable.safetensors");
    std::map<std::string, torch::Tensor> out;
    for (const auto& name : file->names()) out[name] = file->tensor(name).clone();
    return out;
  };
  auto masters = read_masters("checkpoint-4");
  ASSERT_EQ(masters.size(), base.size());
  int64_t elements = 0, master_moved = 0, model_moved = 0;
  for (const auto& [name, master] : masters) {
    ASSERT_EQ(master.scalar_type(), torch::kFloat) << name;
    EXPECT_TRUE(torch::equal(model_after.at(name), master.to(torch::kBFloat16))) << name;
    elements += master.numel();
    master_moved += master.ne(base.at(name).to(torch::kFloat)).sum().item<int64_t>();
    model_moved += model_after.at(name).ne(base.at(name)).sum().item<int64_t>();
  }
  // Rows of the embedding that no training token selects get no gradient; everything else moved in float32, while
  // most bfloat16 weights could not represent the change.
  EXPECT_GT(master_moved, elements / 2);
  EXPECT_LT(model_moved, master_moved / 2);

  Trainer resumed(RunConfig::load(config));
  resumed.resume_from(dir + "/out/checkpoint-2");
  resumed.setup();
  resumed.train();
  auto again = read_masters("checkpoint-4");
  for (const auto& [name, master] : masters) EXPECT_TRUE(torch::equal(master, again.at(name))) << name;

  // A checkpoint written before masters existed holds the 16-bit tensors themselves: they widen exactly.
  auto older = read_masters("checkpoint-2");
  for (auto& [name, tensor] : older) tensor = tensor.to(torch::kBFloat16);
  safetensors::save(dir + "/out/checkpoint-2/trainable.safetensors", older);
  Trainer from_older(RunConfig::load(config));
  from_older.resume_from(dir + "/out/checkpoint-2");
  from_older.setup();
  EXPECT_EQ(from_older.train().steps, 4);
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
