// LoRA's defining invariants (METHODS.md, last section) and HF PEFT's naming and file format.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/batch.h"
#include "io/safetensors.h"
#include "method_testing.h"
#include "models/loader.h"
#include "peft/adapter_io.h"
#include "peft/lora.h"
#include "peft/target_matcher.h"
#include "test_util.h"
#include "train/loss.h"

namespace peft {
namespace {

using test::error_of;
using test::fixture_model;
using test::logits;
using test::sample_ids;

std::shared_ptr<LoraOptions> lora_options(std::vector<std::string> targets = {"q_proj", "v_proj"}) {
  auto options = std::make_shared<LoraOptions>();
  options->r = 4;
  options->lora_alpha = 8;
  options->target_modules = {true, "", std::move(targets)};
  return options;
}

// Makes B non-zero so that the adapter changes the function.
void randomise(Method& method) {
  torch::NoGradGuard no_grad;
  for (auto& parameter : method.trainable_parameters()) parameter.tensor.normal_(0.0, 0.2);
}

TEST(Lora, IdenticalLogitsAtInit) {
  auto model = fixture_model();
  auto before = logits(*model);
  torch::manual_seed(0);
  auto lora = make_lora(lora_options({"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}));
  lora->attach(*model);
  EXPECT_TRUE(torch::equal(before, logits(*model)));  // bit-identical: B = 0 adds exact zeros
}

TEST(Lora, InitMatchesPeft) {
  auto model = fixture_model();
  torch::manual_seed(0);
  auto lora = make_lora(lora_options());
  lora->attach(*model);
  for (const auto& parameter : lora->trainable_parameters()) {
    EXPECT_EQ(parameter.tensor.scalar_type(), torch::kFloat);
    if (parameter.name.find("lora_B") != std::string::npos) {
      EXPECT_EQ(parameter.tensor.abs().max().item<float>(), 0.0f) << parameter.name;
    } else {
      // kaiming_uniform(a=√5) is U(−1/√in, 1/√in).
      double bound = 1.0 / std::sqrt(static_cast<double>(parameter.tensor.size(1)));
      EXPECT_LE(parameter.tensor.abs().max().item<double>(), bound + 1e-7) << parameter.name;
      EXPECT_GT(parameter.tensor.abs().max().item<double>(), 0.5 * bound) << parameter.name;
    }
  }
}

TEST(Lora, BiasAllTrainsEveryBias) {
  auto model = fixture_model("qwen2_bias");
  auto options = lora_options({"q_proj"});
  options->bias = "all";
  auto lora = make_lora(options);
  lora->attach(*model);
  int biases = 0;
  for (const auto& parameter : lora->trainable_parameters()) {
    if (parameter.name.size() > 5 && parameter.name.substr(parameter.name.size() - 5) == ".bias") {
      ++biases;
      EXPECT_FALSE(parameter.weight_decay);
    }
  }
  EXPECT_EQ(biases, 3 * model->config().num_hidden_layers);  // Qwen2: q, k and v biases
  auto saved = lora->adapter_tensors();
  EXPECT_TRUE(saved.count("base_model.model.model.layers.0.self_attn.k_proj.bias"));
}

TEST(Lora, DropoutOnlyOnTheBranch) {
  auto model = fixture_model();
  auto base = logits(*model);
  auto options = lora_options();
  options->lora_dropout = 0.5;
  auto lora = make_lora(options);
  lora->attach(*model);
  model->train();
  // B = 0: whatever dropout does to the branch input, the output is the base model's.
  EXPECT_TRUE(torch::equal(base, logits(*model)));
}

TEST(Lora, RsLoraScale) {
  LoraOptions options;
  options.r = 16;
  options.lora_alpha = 32;
  EXPECT_DOUBLE_EQ(options.scale(), 2.0);
  options.use_rslora = true;
  EXPECT_DOUBLE_EQ(options.scale(), 8.0);
}

TEST(Lora, PeftKeysAndShapes) {
  auto model = fixture_model();
  auto lora = make_lora(lora_options());
  lora->attach(*model);
  auto tensors = lora->adapter_tensors();
  const auto& config = model->config();
  EXPECT_EQ(tensors.size(), static_cast<size_t>(4 * config.num_hidden_layers));
  auto a = tensors.at("base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight");
  auto b = tensors.at("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{4, config.hidden_size}));
  EXPECT_EQ(b.sizes(), (std::vector<int64_t>{config.num_key_value_heads * config.head_dim, 4}));
}

TEST(Lora, SavedAdapterIsInPeftsLayout) {
  auto model = fixture_model();
  auto lora = make_lora(lora_options({"q_proj", "o_proj", "up_proj"}));
  lora->attach(*model);
  randomise(*lora);
  std::string dir = test::temp_dir("lora-save");
  save_adapter(dir, *lora, "tests/fixtures/llama/llama_gqa_tied");

  std::set<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) files.insert(entry.path().filename());
  EXPECT_EQ(files, (std::set<std::string>{"adapter_config.json", "adapter_model.safetensors"}));

  auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["lora_alpha"], 8.0);
  EXPECT_EQ(config["target_modules"], nlohmann::json({"o_proj", "q_proj", "up_proj"}));
  EXPECT_EQ(config["task_type"], "CAUSAL_LM");
  EXPECT_EQ(config["inference_mode"], true);
  auto file = safetensors::File::open(dir + "/adapter_model.safetensors");
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->names().size(), 2u * 3u * size_t(model->config().num_hidden_layers));
}

TEST(Lora, AdapterForAnotherModelIsRejected) {
  auto model = fixture_model("llama_plain");
  auto lora = make_lora(lora_options());
  lora->attach(*model);
  std::string dir = test::temp_dir("lora-other");
  save_adapter(dir, *lora, "llama_plain");
  auto other = fixture_model("mistral_head_dim");
  try {
    load_adapter(dir, *other);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("was it trained for another base model?"), std::string::npos) << e.what();
  }
}

TEST(TargetMatcher, ListMatchesExactOrSuffix) {
  auto model = fixture_model();
  auto match = match_targets(*model, {true, "", {"q_proj", "model.layers.1.mlp.down_proj"}}, {true, "", {}}, "t");
  EXPECT_EQ(match.paths, (std::vector<std::string>{"model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.q_proj",
                                                   "model.layers.1.mlp.down_proj"}));
  // "proj" is neither a whole name nor a dotted suffix.
  EXPECT_THROW(match_targets(*model, {true, "", {"proj"}}, {true, "", {}}, "t"), Error);
}

TEST(TargetMatcher, StringIsFullMatchRegex) {
  auto model = fixture_model();
  auto match = match_targets(*model, {false, ".*layers\\.0\\..*_proj", {}}, {true, "", {}}, "t");
  EXPECT_EQ(match.paths.size(), 7u);
  EXPECT_EQ(match.saved, (std::vector<std::string>{".*layers\\.0\\..*_proj"}));
  // A partial match is not a match.
  EXPECT_THROW(match_targets(*model, {false, "q_proj", {}}, {true, "", {}}, "t"), Error);
}

TEST(TargetMatcher, AllLinearExcludesTheHead) {
  auto model = fixture_model("llama_plain");  // untied: lm_head is a projection
  auto match = match_targets(*model, {false, "all-linear", {}}, {true, "", {}}, "t");
  EXPECT_EQ(match.paths.size(), static_cast<size_t>(7 * model->config().num_hidden_layers));
  for (const auto& path : match.paths) EXPECT_NE(path, "lm_head");
  EXPECT_EQ(match.saved,
            (std::vector<std::string>{"down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"}));
}

TEST(TargetMatcher, ExcludeRemovesMatches) {
  auto model = fixture_model();
  auto match = match_targets(*model, {true, "", {"q_proj"}}, {true, "", {"model.layers.0.self_attn.q_proj"}}, "t");
  EXPECT_EQ(match.paths, (std::vector<std::string>{"model.layers.1.self_attn.q_proj"}));
}

TEST(TargetMatcher, NothingMatchedListsAvailableModules) {
  auto model = fixture_model();
  try {
    match_targets(*model, {true, "", {"q_prj"}}, {true, "", {}}, "peft.target_modules");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("peft.target_modules [q_prj] matched no module"), std::string::npos) << message;
    EXPECT_NE(message.find("available: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"),
              std::string::npos)
        << message;
  }
}

TEST(TargetMatcher, InvalidRegexIsAnError) {
  auto model = fixture_model();
  EXPECT_THROW(match_targets(*model, {false, "(q_proj", {}}, {true, "", {}}, "t"), Error);
}

}  // namespace
}  // namespace peft
