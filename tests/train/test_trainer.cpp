// The training recipe on the real stories260K model: the base stays bit-identical, the loss falls, runs repeat
// exactly from the seed, and the schedules have Hugging Face's shape.
#include <gtest/gtest.h>

#include <filesystem>

#include "config/run_config.h"
#include "models/loader.h"
#include "peft/method.h"
#include "test_util.h"
#include "train/schedule.h"
#include "train/trainer.h"

namespace peft {
namespace {

std::string model_dir() { return test::source_dir() + "/third_party/stories260K-hf"; }

RunConfig small_run(const std::string& tag, std::vector<std::string> overrides = {}) {
  std::string dir = test::temp_dir(tag);
  std::string train = test::write_text(dir + "/train.jsonl",
                                       "{\"text\": \"Once upon a time there was a cat.\"}\n"
                                       "{\"prompt\": \"The dog\", \"completion\": \" ran to the park.\"}\n"
                                       "{\"text\": \"Tom had a red ball. He liked to play.\"}\n"
                                       "{\"text\": \"The sun was hot and the sky was blue.\"}\n");
  std::string config = test::write_text(
      dir + "/run.yaml", "model: {path: " + model_dir() +
                             ", device: cpu}\n"
                             "data: {train: " +
                             train + ", eval: " + train +
                             ", max_length: 32}\n"
                             "peft: {method: lora, r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj]}\n"
                             "train: {max_steps: 12, batch_size: 2, learning_rate: 0.01, log_every: 100, threads: 1}\n"
                             "output: {dir: " +
                             dir + "/out}\n");
  return RunConfig::load(config, overrides);
}

std::map<std::string, torch::Tensor> base_weights(Model& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model.named_parameters()) {
    if (!item.value().requires_grad()) out[item.key()] = item.value().detach().clone();
  }
  return out;
}

TEST(Trainer, BaseWeightsBitIdenticalAfterTraining) {
  Trainer trainer(small_run("trainer-frozen"));
  trainer.setup();
  auto before = base_weights(trainer.model());
  auto reference = load_model(model_dir(), {"float32", "cpu"});
  auto summary = trainer.train();
  EXPECT_EQ(summary.steps, 12);
  auto after = base_weights(trainer.model());
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [name, tensor] : before) EXPECT_TRUE(torch::equal(tensor, after.at(name))) << name;
  // And they are the checkpoint's weights.
  for (const auto& item : reference->named_parameters()) EXPECT_TRUE(torch::equal(item.value(), after.at(item.key())));
  EXPECT_LT(summary.final_eval_loss, summary.base_eval_loss);
}

TEST(Trainer, SameSeedSameAdapter) {
  auto run = [](const std::string& tag) {
    auto config = small_run(tag);
    Trainer trainer(config);
    trainer.setup();
    trainer.train();
    trainer.save();
    return config.output.dir;
  };
  std::string first = run("trainer-seed-a"), second = run("trainer-seed-b");
  EXPECT_EQ(test::read_text(first + "/adapter_model.safetensors"),
            test::read_text(second + "/adapter_model.safetensors"));
}

TEST(Trainer, ParameterCountsAndPeftLine) {
  Trainer trainer(small_run("trainer-counts"));
  trainer.setup();
  const auto& config = trainer.model().config();
  int64_t per_layer = 4 * (config.hidden_size + config.num_attention_heads * config.head_dim) +
                      4 * (config.hidden_size + config.num_key_value_heads * config.head_dim);
  EXPECT_EQ(trainer.counts().trainable, per_layer * config.num_hidden_layers);
  std::string line = trainer.counts().peft_line();
  EXPECT_EQ(line.rfind("trainable params: ", 0), 0u) << line;
  EXPECT_NE(line.find(" || all params: "), std::string::npos);
  EXPECT_NE(line.find(" || trainable%: "), std::string::npos);
}

// LoRA+: lora_B moves at loraplus_lr_ratio × the learning rate. AdamW's first step moves every parameter with a
// non-zero gradient by the learning rate (m̂/√v̂ = ±1), so the largest moves of A and B differ by the ratio.
TEST(Trainer, LoraPlusGivesLoraBItsOwnLearningRate) {
  auto largest_moves = [](double ratio) {
    Trainer trainer(small_run("trainer-loraplus", {"peft.init_lora_weights=false", "train.max_steps=1",
                                                   "train.learning_rate=0.001", "train.max_grad_norm=0",
                                                   "train.lr_scheduler=constant",
                                                   "train.loraplus_lr_ratio=" + std::to_string(ratio)}));
    trainer.setup();
    std::map<std::string, torch::Tensor> before;
    for (const auto& item : trainer.model().named_parameters()) {
      if (item.value().requires_grad()) before[item.key()] = item.value().detach().clone();
    }
    trainer.train();
    double a = 0, b = 0;
    for (const auto& [name, tensor] : before) {
      double moved = (trainer.model().named_parameters()[name] - tensor).abs().max().item<double>();
      double& largest = name.find("lora_B") != std::string::npos ? b : a;
      largest = std::max(largest, moved);
    }
    return std::make_pair(a, b);
  };
  auto [plain_a, plain_b] = largest_moves(1.0);
  EXPECT_NEAR(plain_a, 0.001, 1e-5);
  EXPECT_NEAR(plain_b, 0.001, 1e-5);
  auto [plus_a, plus_b] = largest_moves(16.0);
  EXPECT_NEAR(plus_a, 0.001, 1e-5);
  EXPECT_NEAR(plus_b, 0.016, 1.6e-4);
  EXPECT_NE(test::error_of([] { small_run("trainer-loraplus-bad", {"train.loraplus_lr_ratio=0"}); })
                .find("train.loraplus_lr_ratio: must be positive"),
            std::string::npos);
}

TEST(Schedule, WarmupThenLinearDecay) {
  Schedule schedule{"linear", 1.0, 10, 110};
  EXPECT_DOUBLE_EQ(schedule.at(0), 0.0);
  EXPECT_DOUBLE_EQ(schedule.at(5), 0.5);
  EXPECT_DOUBLE_EQ(schedule.at(10), 1.0);
  EXPECT_DOUBLE_EQ(schedule.at(60), 0.5);
  EXPECT_DOUBLE_EQ(schedule.at(110), 0.0);
}

TEST(Schedule, CosineAndConstant) {
  Schedule cosine{"cosine", 2.0, 0, 100};
  EXPECT_DOUBLE_EQ(cosine.at(0), 2.0);
  EXPECT_NEAR(cosine.at(50), 1.0, 1e-12);
  EXPECT_NEAR(cosine.at(100), 0.0, 1e-12);
  Schedule constant{"constant", 3.0, 4, 100};
  EXPECT_DOUBLE_EQ(constant.at(2), 1.5);
  EXPECT_DOUBLE_EQ(constant.at(99), 3.0);
}

}  // namespace
}  // namespace peft
