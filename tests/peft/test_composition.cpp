// Compositions (several methods applied together): identity at init when every member is, parameters never
// shared, one adapter directory that reloads bit-exactly, merge equal to unmerged, and conflicts refused.
#include <gtest/gtest.h>

#include <set>

#include "data/batch.h"
#include "method_testing.h"
#include "peft/adapter.h"
#include "peft/adapter_io.h"
#include "peft/bitfit.h"
#include "peft/composition.h"
#include "peft/ia3.h"
#include "peft/lora.h"
#include "peft/prefix_tuning.h"
#include "peft/prompt_tuning.h"
#include "train/loss.h"

namespace peft {
namespace {

using test::error_of;
using test::fixture_model;
using test::logits;
using test::sample_ids;

MethodChoice lora(std::vector<std::string> targets, std::string bias = "none") {
  auto options = std::make_shared<LoraOptions>();
  options->r = 4;
  options->lora_alpha = 8;
  options->target_modules = {true, "", std::move(targets)};
  options->bias = std::move(bias);
  return {"lora", options};
}

MethodChoice bitfit() { return {"bitfit", std::make_shared<BitFitOptions>()}; }

MethodChoice ia3(std::vector<std::string> targets, std::vector<std::string> feedforward) {
  auto options = std::make_shared<Ia3Options>();
  options->target_modules = {true, "", std::move(targets)};
  options->feedforward_modules = StringOrList{true, "", std::move(feedforward)};
  return {"ia3", options};
}

MethodChoice adapter(std::string placement, std::string sites) {
  auto options = std::make_shared<AdapterOptions>();
  options->placement = std::move(placement);
  options->sites = std::move(sites);
  options->r = 4;
  return {"adapter", options};
}

void randomise(Method& method) {
  torch::NoGradGuard no_grad;
  for (auto& parameter : method.trainable_parameters())
    parameter.tensor.add_(torch::randn_like(parameter.tensor) * 0.2);
}

int64_t trainable_count(const Method& method) {
  int64_t count = 0;
  for (const auto& parameter : method.trainable_parameters()) count += parameter.tensor.numel();
  return count;
}

TEST(Composition, IdentityAtInitAndCountIsTheSumOfItsMethods) {
  auto model = fixture_model("llama_plain");
  auto before = logits(*model);
  auto both = make_methods({lora({"q_proj", "v_proj"}), bitfit()});
  both->attach(*model);
  EXPECT_EQ(both->name(), "lora+bitfit");
  EXPECT_TRUE(torch::allclose(before, logits(*model), 0, 0));

  int64_t separate = 0;
  for (const auto& choice : {lora({"q_proj", "v_proj"}), bitfit()}) {
    auto alone_model = fixture_model("llama_plain");
    auto alone = make_methods({choice});
    alone->attach(*alone_model);
    separate += trainable_count(*alone);
  }
  EXPECT_EQ(trainable_count(*both), separate);
  EXPECT_EQ(both->targets().front(), "lora: model.layers.0.self_attn.q_proj");
  EXPECT_EQ(both->targets().back(), "bitfit: model.layers.1.mlp.down_proj");
}

TEST(Composition, SavedAdapterHoldsEveryMethodInOrder) {
  auto model = fixture_model("llama_plain");
  auto both =
      make_methods({adapter("parallel", "ffn"), ia3({"k_proj", "v_proj", "down_proj"}, {"down_proj"}), bitfit()});
  both->attach(*model);
  randomise(*both);
  std::string dir = test::temp_dir("composition-save");
  save_adapter(dir, *both, "llama_plain");

  auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "COMPOSITION");
  ASSERT_EQ(config["methods"].size(), 3u);
  EXPECT_EQ(config["methods"][0]["peft_type"], "BOTTLENECK_ADAPTER");
  EXPECT_EQ(config["methods"][1]["peft_type"], "IA3");
  EXPECT_EQ(config["methods"][2]["peft_type"], "BITFIT");

  auto reloaded_model = fixture_model("llama_plain");
  auto reloaded = load_adapter(dir, *reloaded_model);
  EXPECT_EQ(reloaded->name(), "adapter+ia3+bitfit");

  // Not mergeable as a whole: refused before any weight changes.
  auto before = logits(*reloaded_model);
  std::string message = error_of([&] { reloaded->merge(*reloaded_model); });
  EXPECT_EQ(message.rfind("methods[0] (adapter): bottleneck adapters cannot be merged", 0), 0u) << message;
  EXPECT_TRUE(torch::equal(before, logits(*reloaded_model)));
}

TEST(Composition, MergedEqualsUnmergedEvenOnSharedProjections) {
  // LoRA and (IA)³ both on down_proj, where (IA)³ scales the input: LoRA's branch sees the scaled input too,
  // so the merged weight is (W + s·B·A)·diag(l) whatever the order the methods were listed in.
  for (bool ia3_first : {false, true}) {
    auto model = fixture_model("qwen2_bias");
    auto base = logits(*model);
    auto first = lora({"q_proj", "k_proj", "down_proj"});
    auto second = ia3({"k_proj", "down_proj"}, {"down_proj"});
    auto methods = ia3_first ? make_methods({second, first, bitfit()}) : make_methods({first, second, bitfit()});
    methods->attach(*model);
    randomise(*methods);
    auto unmerged = logits(*model);
    EXPECT_GT((unmerged - base).abs().max().item<double>(), 1e-3);
    methods->merge(*model);
    for (auto& [path, projection] : model->projections()) EXPECT_TRUE(projection->hooks().empty()) << path;
    auto merged = logits(*model);
    EXPECT_TRUE(torch::allclose(merged, unmerged, 1e-5, 1e-5)) << (merged - unmerged).abs().max().item<double>();
  }
}

TEST(Composition, ConflictingMethodsAreRefused) {
  auto conflict = [](std::vector<MethodChoice> choices) {
    auto model = fixture_model("llama_plain");
    auto methods = make_methods(choices);
    return error_of([&] { methods->attach(*model); });
  };
  EXPECT_EQ(conflict({lora({"q_proj"}), lora({"q_proj", "v_proj"})}),
            "peft[1] (lora): model.layers.0.self_attn.q_proj.lora_A already exists: another method of the "
            "composition adapts the same module in the same way (give the methods disjoint targets)");
  EXPECT_EQ(conflict({bitfit(), lora({"q_proj"}, "all")}),
            "peft[0] (bitfit) and peft[1] (lora) both train model.layers.0.self_attn.q_proj.bias (give the methods "
            "disjoint targets)");
  EXPECT_EQ(conflict({adapter("serial", "ffn"), adapter("parallel", "both")})
                .rfind("peft[1] (adapter): model.layers.0.ffn_adapter already exists", 0),
            0u);
  EXPECT_EQ(conflict({ia3({"k_proj", "v_proj", "down_proj"}, {"down_proj"}), ia3({"v_proj"}, {})})
                .rfind("peft[1] (ia3): model.layers.0.self_attn.v_proj.ia3_l already exists", 0),
            0u);
  // Disjoint targets of one method twice are fine.
  EXPECT_EQ(conflict({lora({"q_proj"}), lora({"v_proj"})}), "(no error)");
  EXPECT_EQ(conflict({adapter("serial", "attn"), adapter("parallel", "ffn")}), "(no error)");
}

// Prompt and prefix tuning train different parameters but both save `prompt_embeddings`: refused before
// training rather than when the trained adapter is written.
TEST(Composition, MembersWritingTheSameAdapterKeyAreRefusedAtAttach) {
  auto model = fixture_model("llama_gqa_tied");
  auto prompt = std::make_shared<PromptTuningOptions>();
  auto prefix = std::make_shared<PrefixTuningOptions>();
  auto both = make_methods({{"prompt_tuning", prompt}, {"prefix_tuning", prefix}});
  EXPECT_EQ(error_of([&] { both->attach(*model); }),
            "peft[0] (prompt_tuning) and peft[1] (prefix_tuning) both write adapter tensor 'prompt_embeddings', so "
            "they cannot be saved as one adapter");
}

TEST(Composition, BadSavedCompositionsAreRefused) {
  auto model = fixture_model("llama_plain");
  auto both = make_methods({lora({"q_proj"}), bitfit()});
  both->attach(*model);
  std::string dir = test::temp_dir("composition-bad");
  save_adapter(dir, *both, "llama_plain");
  auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));

  auto load_with = [&](const nlohmann::json& edited) {
    test::write_text(dir + "/adapter_config.json", edited.dump(2));
    auto fresh = fixture_model("llama_plain");
    return error_of([&] { load_adapter(dir, *fresh); });
  };
  auto nested = config;
  nested["methods"][1] = config;
  EXPECT_NE(load_with(nested).find("adapter_config.json: methods[1]: a composition cannot contain another composition"),
            std::string::npos);
  auto empty = config;
  empty["methods"] = nlohmann::json::array();
  EXPECT_NE(load_with(empty).find("a COMPOSITION needs a non-empty 'methods' list"), std::string::npos);
  auto unknown = config;
  unknown["methods"][0]["peft_type"] = "LOHA";
  EXPECT_NE(load_with(unknown).find("methods[0]: peft_type 'LOHA' is not supported"), std::string::npos);
  // Only LoRA listed: the file's BitFit tensors belong to no method.
  auto fewer = config;
  fewer["methods"].erase(1);
  EXPECT_NE(load_with(fewer).find("belongs to none of the composition's methods"), std::string::npos)
      << load_with(fewer);
  // A composition whose members are in another order still finds each member's tensors by key.
  auto swapped = config;
  std::swap(swapped["methods"][0], swapped["methods"][1]);
  EXPECT_EQ(load_with(swapped), "(no error)");
}

}  // namespace
}  // namespace peft
