// Activation checkpointing changes memory, not results: with every method on a frozen base (and full fine-tuning),
// on Llama, GPT-2 and BERT, two training-mode forward/backward passes give the same losses and gradients with and
// without it, dropout masks included, and the random stream continues exactly as without it.
#include <gtest/gtest.h>

#include "models/loader.h"
#include "models/transformer.h"
#include "peft/method.h"
#include "peft/method_testing.h"
#include "train/loss.h"

namespace peft {
namespace {

struct Case {
  std::string name, model, peft;
};

struct Outcome {
  std::vector<double> losses;
  std::vector<torch::Tensor> gradients;
  torch::Tensor next_random;  // the generator's next draw after training
};

Batch sample_batch(bool classifier) {
  Batch batch;
  batch.input_ids = test::sample_ids();
  batch.attention_mask = torch::ones_like(batch.input_ids);
  batch.attention_mask[1][7] = 0;  // one padded position
  batch.labels = batch.input_ids.clone();
  batch.labels[1][7] = -100;
  batch.token_type_ids = torch::zeros_like(batch.input_ids);
  batch.class_labels = classifier ? torch::tensor({2, 0}) : torch::tensor({-1, -1});
  return batch;
}

Outcome train_twice(const Case& c, bool checkpointing) {
  torch::manual_seed(7);
  bool classifier = c.model.rfind("encoders/", 0) == 0;
  auto model = load_base_model(test::fixture(c.model), {"float32", "cpu", classifier ? 3 : 0});
  auto method = test::method_from_yaml(c.peft);
  method->attach(*model);
  std::vector<torch::Tensor> trainable;
  for (const auto& parameter : method->trainable_parameters()) trainable.push_back(parameter.tensor);
  if (checkpointing) dynamic_cast<Transformer&>(*model).set_gradient_checkpointing(trainable);
  model->train();
  Outcome outcome;
  torch::manual_seed(11);
  for (int pass = 0; pass < 2; ++pass) {
    auto loss = training_loss(*model, sample_batch(classifier));
    loss.backward();
    outcome.losses.push_back(loss.item<double>());
  }
  for (const auto& tensor : trainable) {
    outcome.gradients.push_back(tensor.grad().defined() ? tensor.grad().clone() : torch::Tensor());
  }
  outcome.next_random = torch::rand({4});
  return outcome;
}

class GradientCheckpointing : public testing::TestWithParam<Case> {};

TEST_P(GradientCheckpointing, SameLossesGradientsAndRandomStream) {
  auto plain = train_twice(GetParam(), false);
  auto checkpointed = train_twice(GetParam(), true);
  ASSERT_EQ(plain.losses.size(), checkpointed.losses.size());
  for (size_t i = 0; i < plain.losses.size(); ++i) {
    EXPECT_NEAR(plain.losses[i], checkpointed.losses[i], 1e-6 * std::abs(plain.losses[i])) << "pass " << i;
  }
  ASSERT_EQ(plain.gradients.size(), checkpointed.gradients.size());
  int with_gradient = 0;
  for (size_t i = 0; i < plain.gradients.size(); ++i) {
    const auto &a = plain.gradients[i], &b = checkpointed.gradients[i];
    ASSERT_EQ(a.defined(), b.defined()) << "parameter " << i;
    if (!a.defined()) continue;
    ++with_gradient;
    EXPECT_TRUE(torch::allclose(a, b, 1e-4, 1e-7))
        << "parameter " << i << ": max difference " << (a - b).abs().max().item<double>() << " of "
        << a.abs().max().item<double>();
  }
  EXPECT_GT(with_gradient, 0);
  EXPECT_TRUE(torch::equal(plain.next_random, checkpointed.next_random));
}

INSTANTIATE_TEST_SUITE_P(
    Methods, GradientCheckpointing,
    testing::Values(
        Case{"lora_dropout", "llama/llama_gqa_tied",
             "{method: lora, r: 4, lora_alpha: 8, lora_dropout: 0.3, target_modules: [q_proj, v_proj, down_proj]}"},
        Case{"ia3", "llama/llama_gqa_tied", "{method: ia3}"},
        Case{"bitfit", "llama/llama_mlp_bias", "{method: bitfit, biases: all}"},
        Case{"houlsby", "llama/llama_gqa_tied",
             "{method: adapter, placement: serial, sites: both, r: 4, init: lora, train_norms: true}"},
        Case{"parallel", "llama/llama_gqa_tied",
             "{method: adapter, placement: parallel, sites: ffn, r: 4, init: lora}"},
        Case{"prefix_projection", "llama/llama_gqa_tied",
             "{method: prefix_tuning, num_virtual_tokens: 3, prefix_projection: true, encoder_hidden_size: 16}"},
        Case{"prompt", "llama/llama_gqa_tied", "{method: prompt_tuning, num_virtual_tokens: 3, init: random}"},
        Case{"full", "llama/llama_plain", "{method: full}"},
        Case{"gpt2_lora", "gpt2/gpt2_tiny", "{method: lora, r: 4, lora_dropout: 0.2}"},
        Case{"gpt2_prefix", "gpt2/gpt2_tiny", "{method: prefix_tuning, num_virtual_tokens: 2}"},
        Case{"bert_lora", "encoders/bert_tiny", "{method: lora, r: 4, lora_dropout: 0.1}"},
        Case{"gemma2_full", "families/gemma2", "{method: full}"},
        Case{"gemma3_prefix", "families/gemma3", "{method: prefix_tuning, num_virtual_tokens: 2}"},
        Case{"phi3_lora", "families/phi3", "{method: lora, r: 4, lora_dropout: 0.2, target_modules: all-linear}"},
        Case{"qwen3_houlsby", "families/qwen3_sliding",
             "{method: adapter, placement: serial, sites: both, r: 4, init: lora}"}),
    [](const testing::TestParamInfo<Case>& info) { return info.param.name; });

// Nothing happens in evaluation or without autograd: the blocks run plainly.
TEST(GradientCheckpointingScope, EvaluationIsUntouched) {
  torch::manual_seed(7);
  auto model = test::fixture_model();
  auto method = test::method_from_yaml("{method: lora, r: 4}");
  method->attach(*model);
  std::vector<torch::Tensor> trainable;
  for (const auto& parameter : method->trainable_parameters()) trainable.push_back(parameter.tensor);
  auto before = test::logits(*model);
  model->set_gradient_checkpointing(trainable);
  model->eval();
  auto ids = test::sample_ids();
  auto logits = model->logits(ids, torch::ones_like(ids));
  EXPECT_TRUE(torch::equal(before, logits.detach()));
}

}  // namespace
}  // namespace peft
