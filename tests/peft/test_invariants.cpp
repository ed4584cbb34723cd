// The invariants every PEFT method keeps (docs/METHODS.md, last section), checked once for every registered
// method on every family, in float32 and bfloat16:
//   - only the method's parameters take gradients, and every one of them does; a few steps lower the loss;
//   - after optimiser steps the frozen base is bit-identical to what it was after attach();
//   - a padded row gives what the row gives alone;
//   - the saved adapter (or, for full fine-tuning, the model directory) reloads onto a fresh base bit-exactly;
//   - merging keeps the function (mergeable methods) or is refused without touching the model.
// A method is covered by registering it (peft/registry.cpp): the cases come from the registry, with settings
// small enough for the fixtures where a method needs them (kSettings).
#include <gtest/gtest.h>

#include <set>

#include "data/batch.h"
#include "data/dataset.h"
#include "method_testing.h"
#include "models/export.h"
#include "models/loader.h"
#include "models/sequence_classifier.h"
#include "peft/adapter_io.h"
#include "peft/composition.h"
#include "peft/modules_to_save.h"
#include "peft/registry.h"
#include "test_util.h"
#include "train/loss.h"

namespace peft {
namespace {

struct Family {
  std::string label;
  std::string fixture;  // under tests/fixtures
  // Ladder Side-Tuning is implemented for the family, and the fixture's sizes allow a side network at 1/2 width
  // (the Llama fixture's 6-wide heads would leave odd rotary heads).
  bool ladder = false;
  bool classifier = false;        // an encoder, loaded as a sequence classifier
  std::string quantize = "none";  // model.quantize: the projections stored quantized
};

const std::vector<Family>& families() {
  static const std::vector<Family> all = {
      {"llama", "llama/llama_gqa_tied"},
      {"qwen2", "families/qwen2_yarn", true},
      {"qwen3", "families/qwen3_sliding"},
      {"mistral", "families/mistral_sliding"},
      {"gemma2", "families/gemma2"},
      {"gemma3", "families/gemma3"},
      {"phi3", "families/phi3"},
      {"gpt2", "gpt2/gpt2_tiny", true},
      {"bert", "encoders/bert_tiny", false, true},
      {"roberta", "encoders/roberta_tiny", false, true},
      // A quantized base: every method that leaves the projections frozen works on it the same way.
      {"llama_nf4", "llama/llama_gqa_tied", false, false, "nf4"},
      {"qwen2_nf4", "families/qwen2_yarn", true, false, "nf4"},
      {"gpt2_int8", "gpt2/gpt2_tiny", true, false, "int8"},
      {"bert_nf4", "encoders/bert_tiny", false, true, "nf4"},
  };
  return all;
}

// Settings for methods whose defaults do not fit the tiny fixtures, or that have variants worth a case of their own.
// A registered method missing here runs as `method: <name>`.
const std::map<std::string, std::vector<std::pair<std::string, std::string>>> kSettings = {
    {"lora", {{"lora", "method: lora"}, {"dora", "{method: lora, use_dora: true, lora_dropout: 0.0}"}}},
    {"adapter",
     {{"houlsby", "{method: adapter, placement: serial, sites: both, r: 4, train_norms: true}"},
      {"parallel", "{method: adapter, placement: parallel, sites: ffn, r: 4}"}}},
    {"prompt_tuning", {{"prompt", "{method: prompt_tuning, num_virtual_tokens: 3}"}}},
    {"prefix_tuning", {{"prefix", "{method: prefix_tuning, num_virtual_tokens: 3}"}}},
    {"lst", {{"lst", "{method: lst, reduction_factor: 2, prune_examples: 3}"}}},
};

// Phi-3 has no PEFT defaults (fused projections): its targets are named.
std::string for_family(std::string yaml, const Family& family) {
  if (family.label != "phi3" || yaml.find("target_modules") != std::string::npos) return yaml;
  if (yaml == "method: lora") yaml = "{method: lora}";
  if (yaml.rfind("{method: lora", 0) == 0)
    return "{method: lora, target_modules: [qkv_proj, gate_up_proj]" + yaml.substr(13);
  if (yaml == "method: ia3")
    return "{method: ia3, target_modules: [qkv_proj, down_proj], feedforward_modules: [down_proj]}";
  return yaml;
}

struct Case {
  std::string label;
  Family family;
  std::vector<std::string> methods;  // `peft` mappings as YAML; several make a composition
  std::string dtype;
};

std::ostream& operator<<(std::ostream& out, const Case& c) { return out << c.label; }

std::vector<Case> cases() {
  std::vector<std::pair<std::string, std::vector<std::string>>> methods;
  for (const auto& entry : method_registry()) {
    auto it = kSettings.find(entry.name);
    if (it == kSettings.end()) {
      methods.push_back({entry.name, {"method: " + entry.name}});
      continue;
    }
    for (const auto& [label, yaml] : it->second) methods.push_back({label, {yaml}});
  }
  // modules_to_save on a causal LM: the head (tied in most fixtures, so untied first). Classifiers save theirs anyway.
  methods.push_back({"lora_head", {"{method: lora, modules_to_save: [lm_head]}"}});
  methods.push_back({"lora_bitfit",
                     {"{method: lora, target_modules: [q_proj, v_proj, c_attn, query, value, qkv_proj]}",
                      "{method: bitfit, biases: all}"}});
  std::vector<Case> out;
  for (const auto& family : families()) {
    for (const auto& [label, yaml] : methods) {
      if (label == "lst" && !family.ladder) continue;  // refused in one line elsewhere (test_families.cpp)
      if (label == "lora_head" && family.classifier) continue;
      // Both train weights a quantized base keeps frozen: refused (test_quantized.cpp).
      bool trains_projections = label == "full" || label == "bitfit" || label == "lora_bitfit";
      if (family.quantize != "none" && trains_projections) continue;
      std::vector<std::string> adapted;
      for (const auto& method : yaml) adapted.push_back(for_family(method, family));
      for (const std::string dtype : {"float32", "bfloat16"}) {
        out.push_back(
            {label + "_" + family.label + "_" + (dtype == "float32" ? "f32" : "bf16"), family, adapted, dtype});
      }
    }
  }
  return out;
}

std::shared_ptr<Transformer> load(const Case& c) {
  LoadOptions options{c.dtype, "cpu", 3};
  options.quantize = c.family.quantize;
  return load_transformer(test::fixture(c.family.fixture), options);
}

// What peft-train builds from the `peft` section (train/trainer.cpp).
std::unique_ptr<Method> build(const Case& c, Transformer& model) {
  std::vector<MethodChoice> choices;
  std::vector<std::string> modules;
  for (const auto& yaml : c.methods) {
    auto section = Section::from_yaml_string(yaml, "test.yaml", "peft");
    MethodChoice choice;
    section.require("method", choice.name);
    choice.options = find_method(choice.name).make_options();
    choice.options->read(section);
    if (section.has("modules_to_save")) section.get("modules_to_save", modules);
    choices.push_back(choice);
  }
  auto method = make_methods(choices);
  if (auto* classifier = dynamic_cast<SequenceClassifier*>(&model))
    return with_classifier_head(std::move(method), *classifier);
  return modules.empty() ? std::move(method) : with_modules_to_save(std::move(method), modules);
}

// Token ids within every fixture's vocabulary; row 1 ends in two padding positions; three classes.
Batch sample_batch() {
  Batch batch;
  batch.input_ids = torch::tensor({{2, 5, 9, 3, 7, 11, 4, 8}, {2, 8, 6, 10, 12, 3, 0, 0}, {2, 14, 6, 9, 21, 3, 30, 3}});
  batch.attention_mask = torch::tensor({{1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 1, 1, 1}});
  batch.labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100);
  batch.token_type_ids = torch::zeros_like(batch.input_ids);
  batch.class_labels = torch::tensor({0, 2, 1});
  batch.scored_tokens = 1;
  return batch;
}

Batch row_alone(const Batch& batch, int64_t row, int64_t length) {
  Batch alone;
  auto slice = [&](const torch::Tensor& t) { return t.slice(0, row, row + 1).slice(1, 0, length).clone(); };
  alone.input_ids = slice(batch.input_ids);
  alone.attention_mask = slice(batch.attention_mask);
  alone.labels = slice(batch.labels);
  alone.token_type_ids = slice(batch.token_type_ids);
  alone.class_labels = batch.class_labels.slice(0, row, row + 1).clone();
  alone.scored_tokens = 1;
  return alone;
}

torch::Tensor loss_of(Transformer& model, const Batch& batch) {
  if (auto* classifier = dynamic_cast<SequenceClassifier*>(&model)) return classification_loss(*classifier, batch);
  return causal_lm_loss(dynamic_cast<CausalLM&>(model), batch);
}

// Logits (B, T, V) of a causal LM, class logits (B, C) of a classifier, in float32.
torch::Tensor outputs_of(Transformer& model, const Batch& batch) {
  torch::NoGradGuard no_grad;
  model.eval();
  if (auto* classifier = dynamic_cast<SequenceClassifier*>(&model)) {
    return classifier->classify(batch.input_ids, batch.attention_mask, batch.token_type_ids).to(torch::kFloat);
  }
  return dynamic_cast<CausalLM&>(model).logits(batch.input_ids, batch.attention_mask).to(torch::kFloat);
}

double max_difference(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Differences are compared with the outputs' own scale; bfloat16 keeps 8 bits of mantissa, and a different batch
// or a merged weight rounds differently.
double tolerance(const Case& c, const torch::Tensor& outputs) {
  double scale = std::max(1.0, outputs.abs().max().item<double>());
  return (c.dtype == "float32" ? 1e-6 : 3e-2) * scale;
}

class MethodInvariants : public testing::TestWithParam<Case> {};

TEST_P(MethodInvariants, HoldOnThisFamilyAndDtype) {
  const Case& c = GetParam();
  torch::manual_seed(7);
  auto model = load(c);
  auto method = build(c, *model);
  method->attach(*model);
  Batch batch = sample_batch();
  std::vector<Example> examples(3);
  for (int64_t i = 0; i < 3; ++i) {
    auto row = batch.input_ids[i].masked_select(batch.attention_mask[i] == 1);
    examples[size_t(i)].input_ids =
        std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    examples[size_t(i)].labels = examples[size_t(i)].input_ids;
  }
  method->initialise_from_data(*model, examples, 0);

  // What the method trains, and a copy of everything else.
  std::set<const void*> trained;
  std::vector<torch::Tensor> parameters;
  for (const auto& parameter : method->trainable_parameters()) {
    trained.insert(parameter.tensor.unsafeGetTensorImpl());
    parameters.push_back(parameter.tensor);
  }
  ASSERT_FALSE(parameters.empty());
  std::map<std::string, torch::Tensor> frozen;
  for (const auto& item : model->named_parameters()) {
    bool trains = trained.count(item.value().unsafeGetTensorImpl()) > 0;
    EXPECT_EQ(item.value().requires_grad(), trains) << item.key();
    if (!trains) frozen[item.key()] = item.value().detach().clone();
  }
  for (const auto& item : model->named_buffers()) frozen["buffer " + item.key()] = item.value().clone();
  std::map<std::string, torch::Tensor> quantized;  // a quantized base's codes and scales
  for (auto& [path, projection] : model->projections()) {
    if (projection->quantized()) quantized[path] = projection->dense_weight();
  }
  EXPECT_EQ(quantized.empty(), c.family.quantize == "none");

  // 1. Gradients reach the method's parameters only; a few steps move them and nothing else. (A zero-initialised
  // factor passes no gradient to its partner at the first step, and a bottleneck's ReLU units may die later: each
  // tensor must take a gradient at some step.)
  torch::optim::Adam optimizer(parameters, torch::optim::AdamOptions(1e-2));
  model->train();
  std::set<std::string> reached;
  std::vector<double> losses;
  for (int step = 0; step < 4; ++step) {
    optimizer.zero_grad();
    auto loss = loss_of(*model, batch);
    losses.push_back(loss.item<double>());
    if (step == 3) break;
    loss.backward();
    for (const auto& parameter : method->trainable_parameters()) {
      ASSERT_TRUE(parameter.tensor.grad().defined()) << parameter.name;
      if (parameter.tensor.grad().abs().sum().item<double>() > 0) reached.insert(parameter.name);
    }
    optimizer.step();
  }
  for (const auto& parameter : method->trainable_parameters()) {
    EXPECT_TRUE(reached.count(parameter.name)) << parameter.name << " took no gradient";
  }
  EXPECT_LT(losses.back(), losses.front()) << "three steps did not lower the training loss";
  for (const auto& item : model->named_parameters()) {
    if (trained.count(item.value().unsafeGetTensorImpl())) continue;
    EXPECT_FALSE(item.value().grad().defined()) << item.key() << " took a gradient";
    EXPECT_TRUE(torch::equal(item.value(), frozen.at(item.key()))) << item.key() << " changed";
  }
  for (const auto& item : model->named_buffers()) {
    EXPECT_TRUE(torch::equal(item.value(), frozen.at("buffer " + item.key()))) << item.key() << " changed";
  }
  for (auto& [path, projection] : model->projections()) {
    if (!quantized.count(path)) continue;
    ASSERT_TRUE(projection->quantized()) << path << " is no longer quantized";
    EXPECT_TRUE(torch::equal(projection->dense_weight(), quantized.at(path))) << path << " changed";
  }

  // 2. A padded row gives what it gives alone.
  auto outputs = outputs_of(*model, batch);
  auto alone = outputs_of(*model, row_alone(batch, 1, 6));
  auto padded = outputs.dim() == 3 ? outputs.slice(0, 1, 2).slice(1, 0, 6) : outputs.slice(0, 1, 2);
  EXPECT_LE(max_difference(padded, alone), tolerance(c, alone)) << "padded row differs from the row alone";

  // 3. What training writes reloads onto a fresh base bit-exactly.
  std::string dir = test::temp_dir("invariants-" + c.label);
  std::shared_ptr<Transformer> reloaded;
  if (method->writes_model()) {
    save_model_directory(*model, test::fixture(c.family.fixture), dir, model->parameters().front().scalar_type());
    reloaded = load_transformer(dir, {c.dtype, "cpu"});
  } else {
    save_adapter(dir, *method, test::fixture(c.family.fixture));
    auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
    bool classifier = dynamic_cast<SequenceClassifier*>(model.get()) != nullptr;
    EXPECT_EQ(config["task_type"], classifier ? "SEQ_CLS" : "CAUSAL_LM");
    if (classifier) {
      EXPECT_EQ(config["modules_to_save"][0], "classifier");
    }
    reloaded = load(c);
    load_adapter(dir, *reloaded);
  }
  EXPECT_TRUE(torch::equal(outputs, outputs_of(*reloaded, batch))) << "the reloaded model differs";

  // 4. Merged equals unmerged, or merging is refused and leaves the model as it was.
  if (method->mergeable()) {
    method->merge(*model);
    EXPECT_LE(max_difference(outputs_of(*model, batch), outputs), tolerance(c, outputs)) << "merged differs";
    for (auto& [path, projection] : model->projections()) EXPECT_TRUE(projection->hooks().empty()) << path;
    for (const auto& item : model->named_parameters()) EXPECT_FALSE(item.value().requires_grad()) << item.key();
  } else {
    EXPECT_NE(test::error_of([&] { method->merge(*model); }), "(no error)");
    EXPECT_TRUE(torch::equal(outputs, outputs_of(*model, batch))) << "a refused merge changed the model";
  }
}

INSTANTIATE_TEST_SUITE_P(Registered, MethodInvariants, testing::ValuesIn(cases()),
                         [](const testing::TestParamInfo<Case>& info) { return info.param.label; });

}  // namespace
}  // namespace peft
