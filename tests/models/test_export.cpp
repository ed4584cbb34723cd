// Merged models written as HF directories load back and compute what base + adapter computed.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "models/export.h"
#include "models/loader.h"
#include "peft/bitfit.h"
#include "peft/ia3.h"
#include "peft/lora.h"
#include "test_util.h"

namespace peft {
namespace {

torch::Tensor logits(CausalLM& model) {
  torch::NoGradGuard no_grad;
  model.eval();
  auto ids = torch::tensor({{1, 5, 9, 3, 7, 11, 2, 4}});
  return model.logits(ids, torch::ones_like(ids));
}

std::unique_ptr<Method> make(const std::string& method) {
  if (method == "lora") {
    auto options = std::make_shared<LoraOptions>();
    options->target_modules = {false, "all-linear", {}};
    return make_lora(options);
  }
  if (method == "ia3") return make_ia3(std::make_shared<Ia3Options>());
  auto options = std::make_shared<BitFitOptions>();
  options->biases = "subset";  // q_proj and up_proj only: the other biases of each group are written as zeros
  options->target_modules = {true, "", {"q_proj", "up_proj"}};
  return make_bitfit(options);
}

class MergeAndSave : public ::testing::TestWithParam<std::string> {};

TEST_P(MergeAndSave, SavedMergedModelMatchesAdaptedModel) {
  std::string base = test::fixture("llama/llama_plain");
  auto model = load_model(base, {"float32", "cpu"});
  auto method = make(GetParam());
  method->attach(*model);
  {
    torch::NoGradGuard no_grad;
    for (auto& parameter : method->trainable_parameters())
      parameter.tensor.add_(torch::randn_like(parameter.tensor) * 0.1);
  }
  auto adapted = logits(*model);
  method->merge(*model);
  std::string out = test::temp_dir("merged-" + GetParam());
  save_model_directory(*model, base, out, torch::kFloat);

  auto merged = load_model(out, {"float32", "cpu"});
  EXPECT_TRUE(torch::allclose(logits(*merged), adapted, 1e-5, 1e-5));
  auto config = nlohmann::json::parse(test::read_text(out + "/config.json"));
  EXPECT_EQ(config["attention_bias"].get<bool>(), GetParam() == "bitfit");
  EXPECT_EQ(config["mlp_bias"].get<bool>(), GetParam() == "bitfit");
}

INSTANTIATE_TEST_SUITE_P(Methods, MergeAndSave, ::testing::Values("lora", "ia3", "bitfit"));

TEST(MergeAndSave, RefusesToOverwriteTheBase) {
  std::string base = test::fixture("llama/llama_plain");
  auto model = load_model(base, {"float32", "cpu"});
  EXPECT_THROW(save_model_directory(*model, base, base, torch::kFloat), Error);
}

}  // namespace
}  // namespace peft
