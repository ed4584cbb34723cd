// GPT-2 (GPT2LMHeadModel): forward parity against the independent reference
// (scripts/reference/make_gpt2_fixtures.py), both checkpoint namings, Conv1D weights transposed on load and
// back on save, PEFT adapters on Conv1D layers (fan_in_fan_out), and the family's PEFT default targets.
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "models/export.h"
#include "models/loader.h"
#include "models/parity_testing.h"
#include "peft/adapter_io.h"
#include "peft/ia3.h"
#include "peft/lora.h"
#include "test_util.h"

namespace peft {
namespace {

using test::Expected;
using test::logits_of;
using test::read_expected;
using test::relative_error;

std::string gpt2_fixture(const std::string& name) { return test::fixture("gpt2/" + name); }

class Gpt2Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Gpt2Parity, MatchesReferenceLogits) {
  std::string dir = gpt2_fixture(GetParam());
  auto model = load_model(dir, {"float32", "cpu"});
  auto expected = read_expected(dir + "/expected.safetensors");
  EXPECT_LT(relative_error(logits_of(*model, expected), expected), 2e-5) << GetParam();
}

// gpt2_tiny: transformer.-prefixed names, tied head, n_inner null, gelu_new. gpt2_bare_names: the original
// OpenAI layout (no prefix, h.N.attn.bias mask buffers), untied head, n_inner given, exact gelu and
// scale_attn_by_inverse_layer_idx.
INSTANTIATE_TEST_SUITE_P(Fixtures, Gpt2Parity, ::testing::Values("gpt2_tiny", "gpt2_bare_names"));

TEST(Gpt2Parity, SharedRandomGpt2MatchesReference) {
  auto shared = test::shared_data_dir();
  if (!shared) GTEST_SKIP() << "../shared/data not present";
  auto model = load_model(*shared + "/fake-gpt2-random-hf", {"float32", "cpu"});
  auto file = safetensors::File::open(gpt2_fixture("fake_gpt2_expected.safetensors"));
  auto ids = file->tensor("input_ids").clone(), mask = file->tensor("attention_mask").clone();
  auto logits = logits_of(*model, {ids, mask, {}});
  Expected head{ids, mask, file->tensor("logits_head").clone()};
  EXPECT_LT(relative_error(logits.narrow(-1, 0, 1024), head), 2e-5);
  Expected whole{ids, mask, file->tensor("logsumexp").clone().unsqueeze(-1)};
  EXPECT_LT(relative_error(torch::logsumexp(logits, -1, /*keepdim=*/true), whole), 2e-5);
}

TEST(Gpt2Model, ConfigMapsOntoTheCommonFields) {
  auto config = load_model_config(gpt2_fixture("gpt2_tiny"));
  EXPECT_EQ(config.hidden_size, 16);
  EXPECT_EQ(config.intermediate_size, 64);  // n_inner null: 4 * n_embd
  EXPECT_EQ(config.num_hidden_layers, 2);
  EXPECT_EQ(config.num_attention_heads, 4);
  EXPECT_EQ(config.num_key_value_heads, 4);
  EXPECT_EQ(config.head_dim, 4);
  EXPECT_EQ(config.max_position_embeddings, 32);
  EXPECT_EQ(config.hidden_act, "gelu_new");
  EXPECT_TRUE(config.tie_word_embeddings);
  auto bare = load_model_config(gpt2_fixture("gpt2_bare_names"));
  EXPECT_EQ(bare.intermediate_size, 20);
  EXPECT_FALSE(bare.tie_word_embeddings);
}

TEST(Gpt2Model, ProjectionsAreHeldOutByIn) {
  auto model = load_model(gpt2_fixture("gpt2_tiny"), {"float32", "cpu"});
  std::map<std::string, std::vector<int64_t>> shapes;
  for (auto& [path, projection] : model->projections()) shapes[path] = projection->weight.sizes().vec();
  EXPECT_EQ(shapes.at("transformer.h.0.attn.c_attn"), (std::vector<int64_t>{48, 16}));
  EXPECT_EQ(shapes.at("transformer.h.0.mlp.c_fc"), (std::vector<int64_t>{64, 16}));
  EXPECT_EQ(shapes.at("transformer.h.1.mlp.c_proj"), (std::vector<int64_t>{16, 64}));
  // Tied: the head is the token embedding matrix, not a projection of its own that methods could target.
  EXPECT_EQ(model->projections().size(), 8u);
}

TEST(Gpt2Model, TooLongSequenceIsOneLine) {
  auto model = load_model(gpt2_fixture("gpt2_tiny"), {"float32", "cpu"});
  auto ids = torch::ones({1, 33}, torch::kLong);
  std::string message = test::error_of([&] { model->logits(ids, torch::ones_like(ids)); });
  EXPECT_NE(message.find("a sequence of 33 tokens exceeds the model's n_positions 32"), std::string::npos) << message;
}

TEST(Gpt2Model, UnsupportedActivationIsRefused) {
  std::string dir = test::temp_dir("gpt2-bad-act");
  auto config = nlohmann::json::parse(test::read_text(gpt2_fixture("gpt2_tiny") + "/config.json"));
  config["activation_function"] = "swish";
  test::write_text(dir + "/config.json", config.dump());
  std::string message = test::error_of([&] { load_model_config(dir); });
  EXPECT_NE(message.find("unsupported activation_function 'swish'"), std::string::npos) << message;
}

TEST(Gpt2Model, TransposedShapeMismatchNamesTheLayout) {
  std::string dir = test::temp_dir("gpt2-bad-shape");
  auto config = nlohmann::json::parse(test::read_text(gpt2_fixture("gpt2_tiny") + "/config.json"));
  config["n_inner"] = 32;  // the checkpoint's c_fc is [16, 64]
  test::write_text(dir + "/config.json", config.dump());
  std::filesystem::copy_file(gpt2_fixture("gpt2_tiny") + "/model.safetensors", dir + "/model.safetensors");
  std::string message = test::error_of([&] { load_model(dir, {"float32", "cpu"}); });
  EXPECT_NE(message.find("tensor 'transformer.h.0.mlp.c_fc.weight' has shape [16, 64] but config.json implies "
                         "[16, 32] (a Conv1D weight, stored [in, out])"),
            std::string::npos)
      << message;
}

class Gpt2AdapterFixture : public ::testing::TestWithParam<std::string> {};

// PEFT adapters written by the reference for GPT-2: LoRA and (IA)³ on Conv1D layers (fan_in_fan_out true),
// prompt tuning (virtual tokens get position embeddings 0..l-1) and prefix tuning (per-head prefixes).
TEST_P(Gpt2AdapterFixture, AdaptedLogitsMatchReference) {
  auto model = load_model(gpt2_fixture("gpt2_tiny"), {"float32", "cpu"});
  std::string adapter = gpt2_fixture(GetParam());
  auto method = load_adapter(adapter, *model);
  auto expected = read_expected(adapter + "/expected.safetensors");
  EXPECT_LT(relative_error(logits_of(*model, expected), expected), 2e-5) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Gpt2AdapterFixture,
                         ::testing::Values("gpt2_tiny_lora", "gpt2_tiny_ia3", "gpt2_tiny_prompt", "gpt2_tiny_prefix"));

TEST(Gpt2Adapters, DefaultsAreTheFamilysAndConfigsSayFanInFanOut) {
  auto model = load_model(gpt2_fixture("gpt2_tiny"), {"float32", "cpu"});
  auto lora = make_lora(std::make_shared<LoraOptions>());
  lora->attach(*model);
  EXPECT_EQ(lora->targets(), (std::vector<std::string>{"transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"}));
  auto config = lora->adapter_config("gpt2_tiny");
  EXPECT_EQ(config["target_modules"], nlohmann::json({"c_attn"}));
  EXPECT_EQ(config["fan_in_fan_out"], true);
  auto tensors = lora->adapter_tensors();
  EXPECT_EQ(tensors.at("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight").sizes().vec(),
            (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(tensors.at("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight").sizes().vec(),
            (std::vector<int64_t>{48, 8}));

  auto other = load_model(gpt2_fixture("gpt2_tiny"), {"float32", "cpu"});
  auto ia3 = make_ia3(std::make_shared<Ia3Options>());
  ia3->attach(*other);
  auto ia3_config = ia3->adapter_config("gpt2_tiny");
  EXPECT_EQ(ia3_config["target_modules"], nlohmann::json({"c_attn", "mlp.c_proj"}));
  EXPECT_EQ(ia3_config["feedforward_modules"], nlohmann::json({"mlp.c_proj"}));
  EXPECT_EQ(ia3_config["fan_in_fan_out"], true);
  EXPECT_EQ(ia3->adapter_tensors().at("base_model.model.transformer.h.1.mlp.c_proj.ia3_l").sizes().vec(),
            (std::vector<int64_t>{1, 64}));
}

// Merging folds LoRA into the (out, in) weights; the exported file holds them [in, out] again, loads back and
// computes what base + adapter computed.
TEST(Gpt2Adapters, MergedExportRestoresConv1dLayout) {
  std::string base = gpt2_fixture("gpt2_tiny");
  auto model = load_model(base, {"float32", "cpu"});
  auto method = load_adapter(gpt2_fixture("gpt2_tiny_lora"), *model);
  auto expected = read_expected(gpt2_fixture("gpt2_tiny_lora") + "/expected.safetensors");
  auto adapted = logits_of(*model, expected);
  method->merge(*model);
  std::string out = test::temp_dir("gpt2-merged");
  save_model_directory(*model, base, out, torch::kFloat);

  auto file = safetensors::File::open(out + "/model.safetensors");
  EXPECT_EQ(file->tensor("transformer.h.0.mlp.c_fc.weight").sizes().vec(), (std::vector<int64_t>{16, 64}));
  EXPECT_FALSE(file->contains("lm_head.weight"));  // tied
  auto merged = load_model(out, {"float32", "cpu"});
  EXPECT_TRUE(torch::allclose(logits_of(*merged, expected), adapted, 1e-5, 1e-5));
  EXPECT_LT(relative_error(logits_of(*merged, expected), expected), 2e-5);
}

}  // namespace
}  // namespace peft
