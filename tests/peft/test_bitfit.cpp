// BitFit's invariants (METHODS.md) and our adapter format for it, on the tiny fixture models.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "config/section.h"
#include "core/error.h"
#include "data/batch.h"
#include "method_testing.h"
#include "models/loader.h"
#include "peft/adapter_io.h"
#include "peft/bitfit.h"
#include "peft/registry.h"
#include "test_util.h"
#include "train/loss.h"

namespace peft {
namespace {

using test::error_of;
using test::fixture_model;
using test::logits;
using test::sample_ids;

std::shared_ptr<BitFitOptions> subset_options(std::vector<std::string> targets) {
  auto options = std::make_shared<BitFitOptions>();
  options->biases = "subset";
  options->target_modules = {true, "", std::move(targets)};
  return options;
}

void randomise(Method& method) {
  torch::NoGradGuard no_grad;
  for (auto& parameter : method.trainable_parameters()) parameter.tensor.normal_(0.0, 0.2);
}

// Bias parameters of every projection but the output head, per layer, from config fields:
// q: n_h·d_h, k and v: d_kv = n_kv·d_h each, o: d, gate and up: d_ff each, down: d.
int64_t all_bias_count(const ModelConfig& c) {
  int64_t d_kv = c.num_key_value_heads * c.head_dim;
  return c.num_hidden_layers *
         (c.num_attention_heads * c.head_dim + 2 * d_kv + 2 * c.hidden_size + 2 * c.intermediate_size);
}

TEST(BitFit, IdenticalLogitsAtInit) {
  for (std::string name : {"llama_gqa_tied", "llama_plain", "qwen2_bias", "mistral_head_dim"}) {
    auto model = fixture_model(name);
    auto before = logits(*model);
    auto bitfit = make_bitfit(std::make_shared<BitFitOptions>());
    bitfit->attach(*model);
    EXPECT_TRUE(torch::equal(before, logits(*model))) << name;  // added biases are exact zeros
  }
}

TEST(BitFit, AddsZeroBiasesOnlyWhereMissing) {
  auto model = fixture_model("qwen2_bias");
  std::map<std::string, torch::Tensor> own;  // Qwen2's own q/k/v biases
  for (auto& [path, projection] : model->projections()) {
    if (projection->bias.defined()) own[path] = projection->bias;
  }
  ASSERT_EQ(own.size(), static_cast<size_t>(3 * model->config().num_hidden_layers));
  auto bitfit = make_bitfit(std::make_shared<BitFitOptions>());
  bitfit->attach(*model);
  auto named = model->named_parameters();
  for (auto& [path, projection] : model->projections()) {
    ASSERT_TRUE(projection->bias.defined()) << path;
    EXPECT_TRUE(projection->bias.requires_grad()) << path;
    EXPECT_TRUE(named.contains(path + ".bias")) << path;
    if (own.count(path)) {
      EXPECT_TRUE(projection->bias.is_same(own[path])) << path;  // trained in place, not replaced
      EXPECT_GT(projection->bias.abs().sum().item<double>(), 0.0) << path;
    } else {
      EXPECT_EQ(projection->bias.abs().max().item<float>(), 0.0f) << path;
      EXPECT_EQ(projection->bias.scalar_type(), projection->weight.scalar_type()) << path;
    }
  }
  auto config = bitfit->adapter_config("qwen2_bias");
  auto added = config["added_biases"].get<std::vector<std::string>>();
  EXPECT_EQ(added.size(), static_cast<size_t>(4 * model->config().num_hidden_layers));
  EXPECT_EQ(added.front(), "model.layers.0.self_attn.o_proj");
  EXPECT_EQ(added[1], "model.layers.0.mlp.gate_proj");
}

TEST(BitFit, TrainableCountMatchesFormula) {
  // llama_plain has an untied lm_head, which `all` leaves alone; mistral_head_dim has n_h·d_h ≠ d.
  for (std::string name : {"llama_gqa_tied", "llama_plain", "mistral_head_dim"}) {
    auto model = fixture_model(name);
    auto bitfit = make_bitfit(std::make_shared<BitFitOptions>());
    bitfit->attach(*model);
    const auto& c = model->config();
    int64_t trainable = 0, requiring_grad = 0;
    for (const auto& parameter : bitfit->trainable_parameters()) {
      trainable += parameter.tensor.numel();
      EXPECT_FALSE(parameter.weight_decay) << parameter.name;
    }
    for (const auto& parameter : model->parameters()) {
      if (parameter.requires_grad()) requiring_grad += parameter.numel();
    }
    EXPECT_EQ(trainable, all_bias_count(c)) << name;
    EXPECT_EQ(requiring_grad, all_bias_count(c)) << name;
    if (c.num_attention_heads * c.head_dim == c.hidden_size) {  // METHODS.md's form: L·(3d + 2·d_kv + 2·d_ff)
      int64_t d_kv = c.num_key_value_heads * c.head_dim;
      EXPECT_EQ(trainable, c.num_hidden_layers * (3 * c.hidden_size + 2 * d_kv + 2 * c.intermediate_size)) << name;
    }
  }
}

TEST(BitFit, SubsetDefaultsToQueryAndIntermediate) {
  auto model = fixture_model("mistral_head_dim");
  auto options = std::make_shared<BitFitOptions>();
  options->biases = "subset";
  auto bitfit = make_bitfit(options);
  bitfit->attach(*model);
  EXPECT_EQ(bitfit->targets(),
            (std::vector<std::string>{"model.layers.0.self_attn.q_proj", "model.layers.0.mlp.up_proj",
                                      "model.layers.1.self_attn.q_proj", "model.layers.1.mlp.up_proj"}));
  const auto& c = model->config();
  auto tensors = bitfit->adapter_tensors();
  EXPECT_EQ(tensors.at("base_model.model.model.layers.1.self_attn.q_proj.bias").sizes(),
            (std::vector<int64_t>{c.num_attention_heads * c.head_dim}));
  EXPECT_EQ(tensors.at("base_model.model.model.layers.0.mlp.up_proj.bias").sizes(),
            (std::vector<int64_t>{c.intermediate_size}));
  EXPECT_EQ(tensors.size(), 4u);
}

TEST(BitFit, BiasKeepsTheWeightDtypeButSavesFloat32) {
  auto model = fixture_model("llama_bf16", "bfloat16");
  auto before = logits(*model);
  auto bitfit = make_bitfit(subset_options({"v_proj"}));
  bitfit->attach(*model);
  EXPECT_TRUE(torch::equal(before, logits(*model)));
  for (const auto& parameter : bitfit->trainable_parameters()) {
    EXPECT_EQ(parameter.tensor.scalar_type(), torch::kBFloat16) << parameter.name;
  }
  for (const auto& [key, tensor] : bitfit->adapter_tensors()) EXPECT_EQ(tensor.scalar_type(), torch::kFloat) << key;
}

TEST(BitFit, SavedAdapterRecordsItsBiases) {
  for (std::string name : {"llama_plain", "qwen2_bias"}) {
    auto model = fixture_model(name);
    auto bitfit = make_bitfit(std::make_shared<BitFitOptions>());
    bitfit->attach(*model);
    randomise(*bitfit);
    std::string dir = test::temp_dir("bitfit-save");
    save_adapter(dir, *bitfit, "tests/fixtures/llama/" + name);

    auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
    std::set<std::string> keys;
    for (const auto& item : config.items()) keys.insert(item.key());
    EXPECT_EQ(keys, (std::set<std::string>{"added_biases", "auto_mapping", "base_model_name_or_path", "biases",
                                           "inference_mode", "modules_to_save", "peft_type", "revision",
                                           "target_modules", "task_type"}));
    EXPECT_EQ(config["peft_type"], "BITFIT");
    EXPECT_EQ(config["biases"], "all");
    EXPECT_EQ(config["task_type"], "CAUSAL_LM");
    EXPECT_EQ(config["inference_mode"], true);
    EXPECT_EQ(config["target_modules"],
              nlohmann::json({"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}));
  }
}

TEST(BitFit, ErrorCases) {
  auto model = fixture_model();
  std::string message = error_of([&] { make_bitfit(subset_options({"query"}))->attach(*model); });
  EXPECT_NE(message.find("peft.target_modules [query] matched no module; available: q_proj"), std::string::npos)
      << message;

  BitFitOptions options;
  auto section = Section::from_yaml_string("biases: all\ntarget_modules: [q_proj]\n", "cfg.yaml", "peft");
  message = error_of([&] { options.read(section); });
  EXPECT_NE(message.find("cfg.yaml:2: peft.target_modules: is only used with biases: subset"), std::string::npos)
      << message;
  auto bad_choice = Section::from_yaml_string("biases: some\n", "cfg.yaml", "peft");
  EXPECT_THROW(options.read(bad_choice), Error);

  // Biases added on Llama must not be loaded over Qwen2's own q/k/v biases (same shapes, other meaning).
  auto bitfit = make_bitfit(std::make_shared<BitFitOptions>());
  bitfit->attach(*model);
  std::string dir = test::temp_dir("bitfit-other");
  save_adapter(dir, *bitfit, "llama_gqa_tied");
  auto qwen = fixture_model("qwen2_bias");
  message = error_of([&] { load_adapter(dir, *qwen); });
  EXPECT_NE(message.find("added_biases"), std::string::npos) << message;
  EXPECT_NE(message.find("was it trained for another base model?"), std::string::npos) << message;
  for (auto& [path, projection] : qwen->projections()) {
    if (projection->bias.defined()) {
      EXPECT_FALSE(projection->bias.requires_grad()) << path;
    }
    EXPECT_TRUE(projection->bias.defined() ==
                (path.find("self_attn.o_proj") == std::string::npos && path.find("mlp.") == std::string::npos))
        << path;  // nothing was added
  }

  auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
  config["biases"] = "some";
  test::write_text(dir + "/adapter_config.json", config.dump(2));
  message = error_of([&] { load_adapter(dir, *fixture_model()); });
  EXPECT_NE(message.find("'biases' must be all or subset"), std::string::npos) << message;
}

TEST(BitFit, RegisteredUnderPeftType) {
  EXPECT_EQ(find_method("bitfit").peft_type, "BITFIT");
  EXPECT_EQ(find_method_by_peft_type("BITFIT").name, "bitfit");
}

}  // namespace
}  // namespace peft
