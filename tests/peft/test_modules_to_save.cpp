// modules_to_save on causal LMs (PEFT's ModulesToSaveWrapper): whole modules trained beside the method, saved under
// PEFT's keys; a head tied to the embeddings is untied first, as PEFT trains a copy. Checked against
// tests/fixtures/lora_variants/lora_lm_head_tied, written by scripts/reference/make_lora_variant_fixtures.py.
#include <gtest/gtest.h>

#include "method_testing.h"
#include "models/export.h"
#include "models/parity_testing.h"
#include "peft/adapter_io.h"
#include "peft/modules_to_save.h"

namespace peft {
namespace {

using test::error_of;
using test::fixture_model;
using test::logits;
using test::method_from_yaml;

torch::Tensor embedding_of(CausalLM& model) { return model.named_parameters()["model.embed_tokens.weight"]; }

void train_a_little(CausalLM& model, const Method& method) {
  std::vector<torch::Tensor> parameters;
  for (const auto& parameter : method.trainable_parameters()) parameters.push_back(parameter.tensor);
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(1e-2));
  for (int step = 0; step < 3; ++step) {
    optimizer.zero_grad();
    test::backward_on_sample(model);
    optimizer.step();
  }
}

TEST(ModulesToSave, PeftAdapterWithATiedHeadMatchesTheReference) {
  std::string dir = test::fixture("lora_variants/lora_lm_head_tied");
  auto expected = test::read_expected(dir + "/expected.safetensors");
  auto model = fixture_model("llama_gqa_tied");
  auto embedding = embedding_of(*model).clone();
  auto method = load_adapter(dir, *model);
  EXPECT_LT(test::relative_error(test::logits_of(*model, expected), expected), 2e-5);
  EXPECT_TRUE(torch::equal(embedding_of(*model), embedding)) << "the embedding must keep the base's values";
  EXPECT_FALSE(model->config().tie_word_embeddings);
  EXPECT_EQ(method->adapter_config("x")["modules_to_save"], nlohmann::json({"lm_head"}));
}

TEST(ModulesToSave, TiedHeadTrainsAsACopySavesReloadsAndMerges) {
  auto model = fixture_model("llama_gqa_tied");
  auto embedding = embedding_of(*model).clone();
  auto method = with_modules_to_save(method_from_yaml("{method: lora, r: 4, target_modules: [q_proj]}"), {"lm_head"});
  method->attach(*model);
  EXPECT_EQ(method->targets().back(), "lm_head");
  train_a_little(*model, *method);
  EXPECT_TRUE(torch::equal(embedding_of(*model), embedding));
  EXPECT_FALSE(torch::equal(model->head()->weight, embedding)) << "the head did not train";

  std::string dir = test::temp_dir("modules-to-save");
  save_adapter(dir, *method, "llama_gqa_tied");
  auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
  EXPECT_EQ(config["modules_to_save"], nlohmann::json({"lm_head"}));
  EXPECT_EQ(config["task_type"], "CAUSAL_LM");
  auto tensors = method->adapter_tensors();
  ASSERT_TRUE(tensors.count("base_model.model.lm_head.weight"));
  EXPECT_EQ(tensors.size(), 2u * 2u + 1u);  // q_proj's A and B in both layers, and the head

  auto reloaded = fixture_model("llama_gqa_tied");
  load_adapter(dir, *reloaded);
  EXPECT_TRUE(torch::equal(logits(*reloaded), logits(*model)));

  // Merged: written with both matrices and tie_word_embeddings false, it loads alone to the same logits.
  auto adapted = logits(*model);
  method->merge(*model);
  std::string merged_dir = test::temp_dir("modules-to-save-merged");
  save_model_directory(*model, test::fixture("llama/llama_gqa_tied"), merged_dir, torch::kFloat);
  auto merged_config = nlohmann::json::parse(test::read_text(merged_dir + "/config.json"));
  EXPECT_EQ(merged_config["tie_word_embeddings"], false);
  auto merged = load_model(merged_dir, {"float32", "cpu"});
  EXPECT_TRUE(torch::allclose(logits(*merged), adapted, 1e-5, 1e-5));
}

TEST(ModulesToSave, EmbeddingsBySuffixLeaveTheTiedHeadAsItWas) {
  auto model = fixture_model("llama_gqa_tied");
  auto embedding = embedding_of(*model).clone();
  auto method = with_modules_to_save(method_from_yaml("method: ia3"), {"embed_tokens"});
  method->attach(*model);
  bool trains_embedding = false;
  for (const auto& parameter : method->trainable_parameters()) {
    trains_embedding |= parameter.name == "model.embed_tokens.weight";
  }
  EXPECT_TRUE(trains_embedding);
  train_a_little(*model, *method);
  EXPECT_FALSE(torch::equal(embedding_of(*model), embedding));
  EXPECT_TRUE(torch::equal(model->head()->weight, embedding)) << "the head must keep the base's values";
  EXPECT_TRUE(method->adapter_tensors().count("base_model.model.model.embed_tokens.weight"));
}

TEST(ModulesToSave, ANameThatSelectsNothingIsOneLine) {
  auto model = fixture_model("mistral_head_dim");
  auto method = with_modules_to_save(method_from_yaml("method: lora"), {"lm_haed"});
  std::string message = error_of([&] { method->attach(*model); });
  EXPECT_EQ(message.rfind("modules_to_save: 'lm_haed' names no module of", 0), 0u) << message;
  EXPECT_NE(message.find("lm_head"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(ModulesToSave, ParametersTheMethodTrainsStayItsOwn) {
  // LoRA's factors on q_proj sit inside self_attn: the module to save brings the base weights, not the factors.
  auto model = fixture_model("llama_plain");
  auto method = with_modules_to_save(method_from_yaml("{method: lora, target_modules: [q_proj]}"), {"self_attn"});
  method->attach(*model);
  std::set<const void*> seen;
  for (const auto& parameter : method->trainable_parameters()) {
    EXPECT_TRUE(seen.insert(parameter.tensor.unsafeGetTensorImpl()).second) << parameter.name << " listed twice";
  }
  auto tensors = method->adapter_tensors();
  EXPECT_TRUE(tensors.count("base_model.model.model.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(tensors.count("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"));
}

}  // namespace
}  // namespace peft
