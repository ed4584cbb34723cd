// (IA)³'s invariants (METHODS.md) and HF PEFT's IA3 naming and file format, on the tiny fixture models.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "config/section.h"
#include "core/error.h"
#include "data/batch.h"
#include "method_testing.h"
#include "models/loader.h"
#include "peft/adapter_io.h"
#include "peft/ia3.h"
#include "peft/registry.h"
#include "test_util.h"
#include "train/loss.h"

namespace peft {
namespace {

using test::error_of;
using test::fixture_model;
using test::logits;
using test::sample_ids;

std::shared_ptr<Ia3Options> ia3_options(std::vector<std::string> targets = {"k_proj", "v_proj", "down_proj"},
                                        std::vector<std::string> feedforward = {"down_proj"}) {
  auto options = std::make_shared<Ia3Options>();
  options->target_modules = {true, "", std::move(targets)};
  options->feedforward_modules = StringOrList{true, "", std::move(feedforward)};
  return options;
}

// Moves the vectors away from ones so that the adapter changes the function.
void randomise(Method& method) {
  torch::NoGradGuard no_grad;
  for (auto& parameter : method.trainable_parameters()) parameter.tensor.normal_(1.0, 0.3);
}

Projection find_projection(CausalLM& model, const std::string& path) {
  for (auto& [name, projection] : model.projections()) {
    if (name == path) return projection;
  }
  throw std::runtime_error("no projection " + path);
}

TEST(Ia3, IdenticalLogitsAtInit) {
  for (std::string name : {"llama_gqa_tied", "qwen2_bias", "llama_plain"}) {
    auto model = fixture_model(name);
    auto before = logits(*model);
    auto ia3 = make_ia3(ia3_options({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
                                    {"up_proj", "down_proj"}));
    ia3->attach(*model);
    EXPECT_EQ(ia3->targets().size(), static_cast<size_t>(7 * model->config().num_hidden_layers));
    EXPECT_TRUE(torch::equal(before, logits(*model))) << name;  // l = 1 multiplies exactly
  }
}

TEST(Ia3, ScalesOutputIncludingBiasOrInput) {
  auto model = fixture_model("qwen2_bias");  // k_proj has a bias: PEFT scales the whole base output
  auto ia3 = make_ia3(ia3_options());
  ia3->attach(*model);
  randomise(*ia3);
  torch::NoGradGuard no_grad;
  auto k = find_projection(*model, "model.layers.0.self_attn.k_proj");
  ASSERT_TRUE(k->bias.defined());
  auto l_k = k->named_parameters(false)["ia3_l"];
  auto x = torch::randn({3, k->in_features});
  auto expected = torch::nn::functional::linear(x, k->weight, k->bias) * l_k.view(-1);
  EXPECT_TRUE(torch::allclose(k->forward(x), expected, 1e-6, 1e-6));

  auto down = find_projection(*model, "model.layers.1.mlp.down_proj");
  auto l_down = down->named_parameters(false)["ia3_l"];
  auto h = torch::randn({3, down->in_features});
  expected = torch::nn::functional::linear(h * l_down.view(-1), down->weight);
  EXPECT_TRUE(torch::allclose(down->forward(h), expected, 1e-6, 1e-6));
}

TEST(Ia3, TrainableCountMatchesFormula) {
  for (std::string name : {"llama_gqa_tied", "mistral_head_dim"}) {
    auto model = fixture_model(name);
    auto ia3 = make_ia3(std::make_shared<Ia3Options>());  // defaults: k, v, down (feed-forward)
    ia3->attach(*model);
    const auto& c = model->config();
    int64_t d_kv = c.num_key_value_heads * c.head_dim;
    int64_t expected = c.num_hidden_layers * (2 * d_kv + c.intermediate_size);  // L·(2·d_kv + d_ff)
    int64_t trainable = 0, requiring_grad = 0;
    for (const auto& parameter : ia3->trainable_parameters()) {
      trainable += parameter.tensor.numel();
      EXPECT_FALSE(parameter.weight_decay) << parameter.name;
      EXPECT_EQ(parameter.tensor.scalar_type(), torch::kFloat) << parameter.name;
    }
    for (const auto& parameter : model->parameters()) {
      if (parameter.requires_grad()) requiring_grad += parameter.numel();
    }
    EXPECT_EQ(trainable, expected) << name;
    EXPECT_EQ(requiring_grad, expected) << name;
  }
}

TEST(Ia3, PeftKeysAndShapes) {
  auto model = fixture_model();
  auto ia3 = make_ia3(std::make_shared<Ia3Options>());
  ia3->attach(*model);
  const auto& c = model->config();
  auto tensors = ia3->adapter_tensors();
  EXPECT_EQ(tensors.size(), static_cast<size_t>(3 * c.num_hidden_layers));
  int64_t d_kv = c.num_key_value_heads * c.head_dim;
  EXPECT_EQ(tensors.at("base_model.model.model.layers.1.self_attn.k_proj.ia3_l").sizes(),
            (std::vector<int64_t>{d_kv, 1}));
  EXPECT_EQ(tensors.at("base_model.model.model.layers.0.self_attn.v_proj.ia3_l").sizes(),
            (std::vector<int64_t>{d_kv, 1}));
  EXPECT_EQ(tensors.at("base_model.model.model.layers.0.mlp.down_proj.ia3_l").sizes(),
            (std::vector<int64_t>{1, c.intermediate_size}));
  // Registered on the projection, so the model's own parameter names are PEFT's keys minus the prefix.
  auto named = model->named_parameters();
  for (const auto& [key, tensor] : tensors) EXPECT_TRUE(named.contains(key.substr(17))) << key;
  EXPECT_EQ(tensors.at("base_model.model.model.layers.0.mlp.down_proj.ia3_l").min().item<float>(), 1.0f);
}

TEST(Ia3, SavedAdapterIsInPeftsLayout) {
  auto model = fixture_model("qwen2_bias");
  auto ia3 = make_ia3(ia3_options({"k_proj", "v_proj", "up_proj", "down_proj"}, {"up_proj", "down_proj"}));
  ia3->attach(*model);
  randomise(*ia3);
  std::string dir = test::temp_dir("ia3-save");
  save_adapter(dir, *ia3, "tests/fixtures/llama/qwen2_bias");

  auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
  std::set<std::string> keys;
  for (const auto& item : config.items()) keys.insert(item.key());
  EXPECT_EQ(keys, (std::set<std::string>{"auto_mapping", "base_model_name_or_path", "exclude_modules", "fan_in_fan_out",
                                         "feedforward_modules", "inference_mode", "init_ia3_weights", "modules_to_save",
                                         "peft_type", "revision", "target_modules", "task_type"}));
  EXPECT_EQ(config["peft_type"], "IA3");
  EXPECT_EQ(config["task_type"], "CAUSAL_LM");
  EXPECT_EQ(config["inference_mode"], true);
  EXPECT_EQ(config["fan_in_fan_out"], false);
  EXPECT_EQ(config["init_ia3_weights"], true);
  EXPECT_TRUE(config["auto_mapping"].is_null());
  EXPECT_TRUE(config["modules_to_save"].is_null());
  EXPECT_TRUE(config["exclude_modules"].is_null());
  EXPECT_EQ(config["target_modules"], nlohmann::json({"down_proj", "k_proj", "up_proj", "v_proj"}));
  EXPECT_EQ(config["feedforward_modules"], nlohmann::json({"down_proj", "up_proj"}));
}

TEST(Ia3, FeedforwardModulesMustBeTargets) {
  Ia3Options options;
  auto section = Section::from_yaml_string("target_modules: [k_proj, v_proj]\nfeedforward_modules: [down_proj]\n",
                                           "cfg.yaml", "peft");
  std::string message = error_of([&] { options.read(section); });
  EXPECT_NE(message.find("cfg.yaml:2"), std::string::npos) << message;
  EXPECT_NE(message.find("peft.feedforward_modules: must be a subset of target_modules"), std::string::npos) << message;
  EXPECT_NE(message.find("[down_proj] not among them"), std::string::npos) << message;
}

TEST(Ia3, FeedforwardDefaultFollowsTargets) {
  auto saved_config = [](const std::string& yaml) {
    auto options = std::make_shared<Ia3Options>();
    auto section = Section::from_yaml_string(yaml, "cfg.yaml", "peft");
    options->read(section);
    EXPECT_FALSE(options->feedforward_modules.has_value());  // resolved for the model at attach()
    auto model = fixture_model();
    auto ia3 = make_ia3(options);
    ia3->attach(*model);
    return ia3->adapter_config("base");
  };
  auto defaults = saved_config("init_ia3_weights: true\n");
  EXPECT_EQ(defaults["target_modules"], nlohmann::json({"down_proj", "k_proj", "v_proj"}));
  EXPECT_EQ(defaults["feedforward_modules"], nlohmann::json({"down_proj"}));
  // Without down_proj among the targets, the default has no feed-forward module (and stays a valid PEFT config).
  auto attention_only = saved_config("target_modules: [k_proj, v_proj]\n");
  EXPECT_EQ(attention_only["feedforward_modules"], nlohmann::json::array());
}

TEST(Ia3, TargetsMatchingNothingIsAnError) {
  auto model = fixture_model();
  auto ia3 = make_ia3(ia3_options({"k_prj"}, {}));
  std::string message = error_of([&] { ia3->attach(*model); });
  EXPECT_NE(message.find("peft.target_modules [k_prj] matched no module"), std::string::npos) << message;
}

TEST(Ia3, BadAdapterConfigIsRefused) {
  auto model = fixture_model();
  auto ia3 = make_ia3(std::make_shared<Ia3Options>());
  ia3->attach(*model);
  std::string dir = test::temp_dir("ia3-refused");
  save_adapter(dir, *ia3, "llama_gqa_tied");
  auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
  {
    // modules_to_save is honoured for IA3 too, so a config naming a module whose tensors are missing is a bad file.
    auto edited = config;
    edited["modules_to_save"] = nlohmann::json({"lm_head"});
    test::write_text(dir + "/adapter_config.json", edited.dump(2));
    auto other = fixture_model();
    std::string message = error_of([&] { load_adapter(dir, *other); });
    EXPECT_NE(message.find("adapter lacks tensor 'base_model.model.lm_head.weight' of modules_to_save"),
              std::string::npos)
        << message;
  }
  auto edited = config;
  edited["feedforward_modules"] = {"gate_proj"};
  test::write_text(dir + "/adapter_config.json", edited.dump(2));
  auto other = fixture_model();
  std::string message = error_of([&] { load_adapter(dir, *other); });
  EXPECT_NE(message.find("feedforward_modules must be a subset of target_modules"), std::string::npos) << message;
}

TEST(Ia3, RegisteredUnderPeftType) {
  EXPECT_EQ(find_method("ia3").peft_type, "IA3");
  EXPECT_EQ(find_method_by_peft_type("IA3").name, "ia3");
}

}  // namespace
}  // namespace peft
