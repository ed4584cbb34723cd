// The LoRA variants: DoRA (magnitude over direction, norm detached, merged = unmerged, PEFT's file layout), PiSSA
// and OLoRA initialisation (the adapted model starts as the base; the saved adapter is a plain LoRA on the original
// base), and the one-line refusals of what does not fit.
#include <gtest/gtest.h>

#include <filesystem>

#include "config/section.h"
#include "io/safetensors.h"
#include "method_testing.h"
#include "models/export.h"
#include "models/loader.h"
#include "models/parity_testing.h"
#include "peft/adapter_io.h"
#include "peft/registry.h"
#include "test_util.h"
#include "train/loss.h"

namespace peft {
namespace {

using test::error_of;
using test::fixture_model;
using test::logits;
using test::method_from_yaml;

// Largest difference relative to the larger logit scale.
double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1.0, b.abs().max().item<double>());
}

void perturb(Method& method, double std) {
  torch::NoGradGuard no_grad;
  for (auto& parameter : method.trainable_parameters())
    parameter.tensor.add_(torch::randn_like(parameter.tensor) * std);
}

TEST(Dora, StartsAsTheBaseAndSavesPeftsMagnitudeVectors) {
  auto model = fixture_model("llama_mlp_bias");
  auto before = logits(*model);
  torch::manual_seed(1);
  auto dora =
      method_from_yaml("{method: lora, r: 4, lora_alpha: 8, use_dora: true, target_modules: [o_proj, up_proj]}");
  dora->attach(*model);
  EXPECT_LT(relative_difference(logits(*model), before), 1e-6);  // m = ‖W0‖ and B = 0: W' = W0

  auto tensors = dora->adapter_tensors();
  const std::string key = "base_model.model.model.layers.0.self_attn.o_proj.lora_magnitude_vector";
  ASSERT_TRUE(tensors.count(key));
  EXPECT_EQ(tensors.at(key).sizes(), torch::IntArrayRef({model->config().hidden_size}));
  EXPECT_EQ(tensors.size(), 4u * 3u);  // 2 layers × 2 targets × (A, B, m)
  EXPECT_EQ(dora->adapter_config("base")["use_dora"], true);

  perturb(*dora, 0.1);
  auto adapted = logits(*model);
  std::string dir = test::temp_dir("dora-save");
  save_adapter(dir, *dora, test::fixture("llama/llama_mlp_bias"));
  auto reloaded = fixture_model("llama_mlp_bias");
  auto method = load_adapter(dir, *reloaded);
  EXPECT_TRUE(torch::equal(logits(*reloaded), adapted));
}

TEST(Dora, MergedEqualsUnmergedWithAndWithoutBiases) {
  for (const std::string fixture : {"llama_plain", "llama_mlp_bias"}) {
    auto model = fixture_model(fixture);
    torch::manual_seed(2);
    auto dora = method_from_yaml("{method: lora, r: 4, use_dora: true, target_modules: all-linear}");
    dora->attach(*model);
    perturb(*dora, 0.2);
    auto unmerged = logits(*model);
    dora->merge(*model);
    EXPECT_LT(relative_difference(logits(*model), unmerged), 1e-5) << fixture;
  }
}

// The norm is a constant for the gradient: m, A and B all get gradients, and the magnitude's gradient is what the
// detached formula gives (d/dm of f·(W0·x + s·B·A·x) with f = m/‖·‖ held as m/c).
TEST(Dora, GradientsReachMagnitudeAndFactors) {
  auto model = fixture_model("llama_plain");
  torch::manual_seed(3);
  auto dora = method_from_yaml("{method: lora, r: 4, use_dora: true, target_modules: [v_proj]}");
  dora->attach(*model);
  perturb(*dora, 0.1);
  model->train();
  test::backward_on_sample(*model);
  for (const auto& parameter : dora->trainable_parameters()) {
    ASSERT_TRUE(parameter.tensor.grad().defined()) << parameter.name;
    EXPECT_GT(parameter.tensor.grad().abs().sum().item<double>(), 0) << parameter.name;
  }
}

TEST(Dora, BFloat16BaseKeepsFloat32Factors) {
  auto model = load_model(test::fixture("llama/llama_plain"), {"bfloat16", "cpu"});
  torch::manual_seed(4);
  auto dora = method_from_yaml("{method: lora, r: 4, use_dora: true, target_modules: [q_proj, down_proj]}");
  dora->attach(*model);
  for (const auto& parameter : dora->trainable_parameters()) EXPECT_EQ(parameter.tensor.scalar_type(), torch::kFloat);
  auto ids = test::sample_ids();
  auto out = model->logits(ids, torch::ones_like(ids));
  EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::isfinite(out).all().item<bool>());
}

// HF PEFT DoRA adapters written by the independent reference (scripts/reference/make_lora_variant_fixtures.py):
// the adapted logits, and the merged weights' logits, on a base without and with biases.
TEST(DoraFixture, AdaptedAndMergedLogitsMatchReference) {
  for (const auto& [base, adapter] : std::vector<std::pair<std::string, std::string>>{
           {"llama_plain", "llama_plain_dora"}, {"llama_mlp_bias", "llama_mlp_bias_dora"}}) {
    auto model = fixture_model(base);
    std::string dir = test::fixture("lora_variants/" + adapter);
    auto method = load_adapter(dir, *model);
    auto expected = test::read_expected(dir + "/expected.safetensors");
    EXPECT_LT(test::relative_error(test::logits_of(*model, expected), expected), 2e-5) << adapter;
    method->merge(*model);
    auto merged = test::read_expected(dir + "/merged_expected.safetensors");
    EXPECT_LT(test::relative_error(test::logits_of(*model, merged), merged), 2e-5) << adapter;
  }
}

// PiSSA's and OLoRA's initial s·B·A and residual base weight, against the reference's (sign-free quantities).
TEST(FactorisedInitFixture, ProductAndResidualMatchReference) {
  auto reference = safetensors::File::open(test::fixture("lora_variants/pissa_olora/init.safetensors"));
  for (const std::string kind : {"pissa", "olora"}) {
    auto model = fixture_model("llama_plain");
    auto method =
        method_from_yaml("{method: lora, r: 4, lora_alpha: 8, init_lora_weights: " + kind +
                         ", target_modules: [model.layers.0.self_attn.q_proj, model.layers.0.mlp.down_proj]}");
    method->attach(*model);
    auto parameters = model->named_parameters();
    for (const std::string module : {"model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj"}) {
      auto product = torch::matmul(parameters[module + ".lora_B.weight"], parameters[module + ".lora_A.weight"]) * 2.0;
      auto delta = reference->tensor(module + "." + kind + ".delta");
      auto residual = reference->tensor(module + "." + kind + ".residual");
      EXPECT_LT(relative_difference(product.detach(), delta), 1e-5) << module << " " << kind;
      EXPECT_LT(relative_difference(parameters[module + ".weight"], residual), 1e-5) << module << " " << kind;
    }
  }
}

// A trained PiSSA adapter as PEFT saves it converted (rank 2r on the original base) and unconverted
// (init_lora_weights "pissa": the residual base is recomputed on load, as PEFT does) gives the trained logits.
TEST(FactorisedInitFixture, ConvertedAndUnconvertedPissaAdaptersMatchReference) {
  std::string dir = test::fixture("lora_variants/pissa_converted");
  auto expected = test::read_expected(dir + "/expected.safetensors");
  for (const std::string& adapter : {dir, dir + "/trained"}) {
    auto model = fixture_model("llama_plain");
    auto method = load_adapter(adapter, *model);
    EXPECT_LT(test::relative_error(test::logits_of(*model, expected), expected), 2e-5) << adapter;
  }
}

class FactorisedInit : public testing::TestWithParam<std::string> {};

// PiSSA / OLoRA: the base keeps W0 - s·B·A, so the adapted model starts as the base; after training, the saved
// adapter (rank 2r, [A; A0] and [B, -B0]) on the original base gives the trained model; peft-merge from it too.
TEST_P(FactorisedInit, StartsAsTheBaseAndConvertsToPlainLoraOnTheOriginalBase) {
  auto model = fixture_model("llama_plain");
  auto before = logits(*model);
  torch::manual_seed(5);
  auto method = method_from_yaml("{method: lora, r: 4, lora_alpha: 8, init_lora_weights: " + GetParam() +
                                 ", target_modules: [q_proj, v_proj, down_proj]}");
  method->attach(*model);
  EXPECT_LT(relative_difference(logits(*model), before), 1e-5);
  auto residual = model->named_parameters()["model.layers.0.self_attn.q_proj.weight"].clone();
  auto original = fixture_model("llama_plain")->named_parameters()["model.layers.0.self_attn.q_proj.weight"];
  EXPECT_GT((residual - original).abs().max().item<double>(), 1e-3);  // W0 really gave up its principal part

  perturb(*method, 0.05);
  auto trained = logits(*model);
  std::string dir = test::temp_dir("factorised-" + GetParam());
  save_adapter(dir, *method, test::fixture("llama/llama_plain"));
  auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
  EXPECT_EQ(config["r"], 8);
  EXPECT_EQ(config["lora_alpha"], 16.0);
  EXPECT_EQ(config["init_lora_weights"], true);
  auto fresh = fixture_model("llama_plain");
  auto converted = load_adapter(dir, *fresh);
  EXPECT_LT(relative_difference(logits(*fresh), trained), 1e-5);
  converted->merge(*fresh);
  EXPECT_LT(relative_difference(logits(*fresh), trained), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Kinds, FactorisedInit, testing::Values("pissa", "pissa_niter_4", "olora"));

TEST(LoraVariants, RefusedInOneLine) {
  auto section = Section::from_yaml_string("{method: ia3, use_dora: true}", "test.yaml", "peft");
  std::string error = error_of([&] {
    std::string method;
    section.require("method", method);
    find_method(method).make_options()->read(section);
    section.finish("method 'ia3'");
  });
  EXPECT_NE(error.find("unknown key 'peft.use_dora' for method 'ia3'"), std::string::npos) << error;
  EXPECT_NE(error_of([] {
              method_from_yaml("{method: lora, init_lora_weights: svd}");
            }).find("init_lora_weights: must be true, false, gaussian, pissa, pissa_niter_N"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              method_from_yaml("{method: lora, init_lora_weights: pissa, use_dora: true}");
            }).find("pissa with use_dora is not supported"),
            std::string::npos);
  auto model = fixture_model("llama_plain");
  auto big = method_from_yaml("{method: lora, r: 64, init_lora_weights: olora, target_modules: [q_proj]}");
  EXPECT_NE(error_of([&] { big->attach(*model); }).find("r 64 exceeds the rank of model.layers.0.self_attn.q_proj"),
            std::string::npos);
}

// An adapter_config.json and a file that disagree about DoRA: one line each, nothing loaded.
TEST(LoraVariants, DoraFilesThatDisagreeAreRefused) {
  auto model = fixture_model("llama_plain");
  torch::manual_seed(6);
  auto dora = method_from_yaml("{method: lora, r: 4, use_dora: true, target_modules: [q_proj]}");
  dora->attach(*model);
  std::string dir = test::temp_dir("dora-disagree");
  save_adapter(dir, *dora, test::fixture("llama/llama_plain"));
  auto tensors = dora->adapter_tensors();
  auto rewrite = [&](const std::map<std::string, torch::Tensor>& files, bool use_dora) {
    safetensors::save(dir + "/adapter_model.safetensors", files);
    auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
    config["use_dora"] = use_dora;
    test::write_text(dir + "/adapter_config.json", config.dump());
    return error_of([&] { load_adapter(dir, *fixture_model("llama_plain")); });
  };
  auto without = tensors;
  for (auto it = without.begin(); it != without.end();) {
    it = it->first.find("magnitude") != std::string::npos ? without.erase(it) : std::next(it);
  }
  EXPECT_NE(rewrite(without, true).find("adapter lacks tensor"), std::string::npos);
  EXPECT_NE(rewrite(tensors, false).find("adapter has 6 tensors but its config implies 4"), std::string::npos);
  auto wrong = tensors;
  wrong["base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector"] = torch::ones({5});
  EXPECT_NE(rewrite(wrong, true).find("lora_magnitude_vector' has shape [5]"), std::string::npos);
}

}  // namespace
}  // namespace peft
