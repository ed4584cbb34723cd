// Full fine-tuning: every parameter trains (a tied head once), decay spares vectors, and the result is a model.
#include <gtest/gtest.h>

#include <set>

#include "data/batch.h"
#include "method_testing.h"
#include "models/export.h"
#include "peft/full.h"
#include "peft/registry.h"
#include "train/loss.h"

namespace peft {
namespace {

using test::error_of;
using test::fixture_model;
using test::logits;
using test::sample_ids;

std::unique_ptr<Method> make() { return make_full(std::make_shared<FullOptions>()); }

TEST(Full, TrainsEveryParameterOnceAndIsTheBaseAtInit) {
  for (std::string name : {"llama_gqa_tied", "llama_plain"}) {
    auto model = fixture_model(name);
    auto before = logits(*model);
    auto full = make();
    full->attach(*model);
    EXPECT_TRUE(torch::equal(before, logits(*model))) << name;

    int64_t total = 0, trainable = 0;
    for (const auto& parameter : model->parameters()) total += parameter.numel();
    std::set<std::string> names;
    for (const auto& parameter : full->trainable_parameters()) {
      trainable += parameter.tensor.numel();
      names.insert(parameter.name);
      // Decay for matrices only (as HF's Trainer): biases and norm weights are exempt.
      EXPECT_EQ(parameter.weight_decay, parameter.tensor.dim() >= 2) << parameter.name;
    }
    EXPECT_EQ(trainable, total) << name;  // the tied head is the embedding: counted once
    for (const auto& item : model->named_parameters()) {
      EXPECT_TRUE(item.value().requires_grad()) << item.key();
      EXPECT_TRUE(names.count(item.key())) << item.key();
    }
  }
}

TEST(Full, GradientsReachEveryParameter) {
  auto model = fixture_model("llama_plain");
  auto full = make();
  full->attach(*model);
  test::backward_on_sample(*model);
  for (const auto& parameter : full->trainable_parameters()) {
    ASSERT_TRUE(parameter.tensor.grad().defined()) << parameter.name;
    EXPECT_GT(parameter.tensor.grad().abs().sum().item<double>(), 0.0) << parameter.name;
  }
}

TEST(Full, WritesAModelNotAnAdapter) {
  auto model = fixture_model("llama_gqa_tied");
  auto full = make();
  full->attach(*model);
  EXPECT_TRUE(full->writes_model());
  EXPECT_NE(error_of([&] { full->adapter_tensors(); }).find("writes a model directory"), std::string::npos);
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : full->trainable_parameters())
      parameter.tensor.add_(torch::randn_like(parameter.tensor) * 0.05);
  }
  std::string dir = test::temp_dir("full-save");
  std::string base = test::fixture("llama/llama_gqa_tied");
  save_model_directory(*model, base, dir, stored_dtype(base));
  auto reloaded = load_model(dir, {"float32", "cpu"});
  EXPECT_TRUE(torch::equal(logits(*model), logits(*reloaded)));
}

TEST(Full, RegisteredWithoutAdapterFormat) {
  EXPECT_EQ(find_method("full").peft_type, "");
  EXPECT_NE(error_of([] { find_method_by_peft_type(""); }).find("not supported"), std::string::npos);
}

}  // namespace
}  // namespace peft
