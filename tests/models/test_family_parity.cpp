// Forward parity of the rotary decoder families and their variants (Qwen3, Gemma 2/3, Phi-3; llama3, linear, yarn
// and longrope rope scaling, transformers 5's rope_parameters; sliding windows) against the independent float64
// reference (scripts/reference/make_family_fixtures.py), and the one-line refusals of what is not implemented.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "eval/generate.h"
#include "models/loader.h"
#include "peft/method.h"
#include "peft/method_testing.h"
#include "models/parity_testing.h"
#include "test_util.h"

namespace peft {
namespace {

using test::logits_of;
using test::read_expected;
using test::relative_error;

std::string family_fixture(const std::string& name) { return test::fixture("families/" + name); }

class FamilyParity : public ::testing::TestWithParam<std::string> {};

TEST_P(FamilyParity, MatchesReferenceLogits) {
  std::string dir = family_fixture(GetParam());
  auto model = load_model(dir, {"float32", "cpu"});
  auto expected = read_expected(dir + "/expected.safetensors");
  double error = relative_error(logits_of(*model, expected), expected);
  std::ostringstream text;
  text << error;
  RecordProperty("relative_error", text.str());
  EXPECT_LT(error, 2e-5) << GetParam();
}

// The padded row's real positions give what the row gives alone (windows and positions count from its start;
// phi3_longrope's 9 real tokens still pass its original context of 8, as the batch's 12 do).
TEST_P(FamilyParity, PaddedRowEqualsTheRowAlone) {
  std::string dir = family_fixture(GetParam());
  auto model = load_model(dir, {"float32", "cpu"});
  auto expected = read_expected(dir + "/expected.safetensors");
  auto alone = test::row_alone(expected, 1);
  EXPECT_LT(relative_error(logits_of(*model, alone), alone), 2e-5);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FamilyParity,
                         ::testing::Values("llama3_rope", "llama_linear_rope", "llama_rope_parameters", "qwen2_yarn",
                                           "mistral_sliding", "qwen3", "qwen3_sliding", "gemma2", "gemma3",
                                           "gemma3_multimodal", "phi3", "phi3_longrope"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// longrope's short factors below the original context, its long ones above (the T = 12 case above).
TEST(FamilyParity, LongropeUsesShortFactorsWithinTheOriginalContext) {
  std::string dir = family_fixture("phi3_longrope");
  auto model = load_model(dir, {"float32", "cpu"});
  auto expected = read_expected(dir + "/expected_short.safetensors");
  EXPECT_LT(relative_error(logits_of(*model, expected), expected), 2e-5);
}

// Batched greedy generation (right-padded rows re-run each step) gives what each prompt gives alone, and each
// token is the arg-max of the forward pass over the sequence so far: windows, soft-capped logits and an attention
// prefix behave the same in generation as in the forward pass.
TEST(FamilyGeneration, BatchedGreedyEqualsOneByOneAndTheForwardPass) {
  for (const std::string name : {"gemma2", "mistral_sliding", "phi3", "gemma3", "gemma2+prefix"}) {
    bool prefix = name == "gemma2+prefix";
    auto model = load_model(family_fixture(prefix ? "gemma2" : name), {"float32", "cpu"});
    std::unique_ptr<Method> method;
    if (prefix) {
      torch::manual_seed(5);
      method = test::method_from_yaml("{method: prefix_tuning, num_virtual_tokens: 3}");
      method->attach(*model);
    }
    std::vector<std::vector<int64_t>> prompts = {{1, 7, 9, 30}, {1, 12}, {1, 5, 6, 7, 8, 9, 10, 11}};
    GenerationOptions options;
    options.max_new_tokens = 6;
    options.eos_id = -1;
    auto batched = generate_batch(*model, prompts, options);
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(batched[i], generate(*model, prompts[i], options)) << name << " prompt " << i;
      auto sequence = prompts[i];
      torch::NoGradGuard no_grad;
      for (int64_t token : batched[i]) {
        auto ids = torch::tensor(sequence, torch::kLong).unsqueeze(0);
        auto logits = model->logits(ids, torch::ones_like(ids))[0][-1];
        EXPECT_EQ(logits.argmax().item<int64_t>(), token) << name << " prompt " << i;
        sequence.push_back(token);
      }
    }
  }
}

TEST(FamilyParity, Gemma2BFloat16StaysClose) {
  std::string dir = family_fixture("gemma2");
  auto model = load_model(dir, {"bfloat16", "cpu"});
  auto expected = read_expected(dir + "/expected.safetensors");
  auto logits = logits_of(*model, expected);
  EXPECT_EQ(logits.scalar_type(), torch::kBFloat16);
  EXPECT_LT(relative_error(logits, expected), 0.05);
}

// A copy of a fixture whose config.json is edited by `edit`; returns the load error ("" when it loads).
std::string load_error_with(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  std::string dir = test::temp_dir("family-error-" + name);
  std::filesystem::copy(family_fixture(name), dir, std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  auto config = nlohmann::json::parse(test::read_text(dir + "/config.json"));
  edit(config);
  std::ofstream(dir + "/config.json") << config.dump(2);
  return test::error_of([&] { load_model(dir, {"float32", "cpu"}); });
}

TEST(FamilyConfig, RefusesWhatItDoesNotImplementInOneLine) {
  // Dynamic NTK scaling (the reference's own config) is refused rather than computed one way of two.
  std::string error = load_error_with("llama_dynamic_rope", [](nlohmann::json&) {});
  EXPECT_NE(error.find("config.json: rope_scaling: rope type 'dynamic' is not supported"), std::string::npos) << error;

  error = load_error_with("llama3_rope", [](nlohmann::json& c) { c["rope_scaling"]["rope_type"] = "ntk-by-parts"; });
  EXPECT_NE(error.find("rope type 'ntk-by-parts' is not supported"), std::string::npos) << error;

  error = load_error_with("llama3_rope", [](nlohmann::json& c) { c["rope_scaling"].erase("low_freq_factor"); });
  EXPECT_NE(error.find("rope_scaling: missing key 'low_freq_factor'"), std::string::npos) << error;

  error = load_error_with("phi3_longrope", [](nlohmann::json& c) { c["rope_scaling"].erase("long_factor"); });
  EXPECT_NE(error.find("longrope needs 'long_factor'"), std::string::npos) << error;

  error = load_error_with("phi3_longrope", [](nlohmann::json& c) { c["rope_scaling"]["short_factor"] = {1.0, 2.0}; });
  EXPECT_NE(error.find("'short_factor' has 2 factors"), std::string::npos) << error;

  error = load_error_with("qwen3_sliding", [](nlohmann::json& c) { c["layer_types"] = {"full_attention", "chunked"}; });
  EXPECT_NE(error.find("layer_types must list one type per layer"), std::string::npos) << error;

  error = load_error_with("mistral_sliding", [](nlohmann::json& c) { c["attention_dropout"] = 0.1; });
  EXPECT_NE(error.find("attention_dropout 0.1 is not supported"), std::string::npos) << error;

  error = load_error_with("gemma2", [](nlohmann::json& c) { c["hidden_activation"] = "relu"; });
  EXPECT_NE(error.find("unsupported hidden_activation 'relu'"), std::string::npos) << error;

  error = load_error_with("phi3", [](nlohmann::json& c) { c["partial_rotary_factor"] = 0.1; });
  EXPECT_NE(error.find("the rotary dimension"), std::string::npos) << error;

  // Fused projections whose rows do not split as the config says: the loader names the tensor.
  error = load_error_with("phi3", [](nlohmann::json& c) { c["num_key_value_heads"] = 1; });
  EXPECT_NE(error.find("tensor 'model.layers.0.self_attn.qkv_proj.weight' has shape"), std::string::npos) << error;
}

TEST(FamilyConfig, MissingGemmaNormIsNamed) {
  std::string dir = test::temp_dir("family-error-gemma-norm");
  std::filesystem::copy(family_fixture("gemma2"), dir, std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
  auto tensors = safetensors::File::open(dir + "/model.safetensors");
  std::map<std::string, torch::Tensor> kept;
  for (const auto& name : tensors->names()) {
    if (name != "model.layers.1.pre_feedforward_layernorm.weight") kept[name] = tensors->tensor(name).clone();
  }
  tensors.reset();
  safetensors::save(dir + "/model.safetensors", kept);
  std::string error = test::error_of([&] { load_model(dir, {"float32", "cpu"}); });
  EXPECT_NE(error.find("tensor 'model.layers.1.pre_feedforward_layernorm.weight' required by Gemma2ForCausalLM is "
                       "missing"),
            std::string::npos)
      << error;
}

}  // namespace
}  // namespace peft
