// TorchScript base models, from archives Debian's PyTorch 1.13 wrote (scripts/reference/make_torchscript_fixtures.py):
// a known family's archive loads into the native model (same logits as the module's own code and as the safetensors
// checkpoint, same LoRA training); a module of unknown architecture is adapted at its linear layers through its own
// graph, with the invariants of each method that applies, and bad archives are refused in one line.
#include <gtest/gtest.h>

#include <torch/script.h>

#include "core/error.h"
#include "data/batch.h"
#include "models/loader.h"
#include "models/torchscript/script_model.h"
#include "peft/adapter_io.h"
#include "peft/method.h"
#include "peft/method_testing.h"
#include "test_util.h"
#include "train/loss.h"

namespace peft {
namespace {

using test::method_from_yaml;

std::string stories_pt(const std::string& kind) {
  return test::fixture("torchscript/stories260k_" + kind + "/model.pt");
}
std::string custom_pt(const std::string& name) { return test::fixture("torchscript/custom/" + name + ".pt"); }
std::string stories_dir() { return test::source_dir() + "/third_party/stories260K-hf"; }

Batch sample_batch() {
  Batch batch;
  batch.input_ids = torch::tensor({{1, 403, 407, 261, 378, 9, 31, 40}, {1, 67, 12, 88, 5, 0, 0, 0}});
  batch.attention_mask = torch::tensor({{1, 1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 0, 0, 0}});
  batch.labels =
      torch::where(batch.attention_mask.to(torch::kBool), batch.input_ids, torch::full_like(batch.input_ids, -100));
  batch.token_type_ids = torch::zeros_like(batch.input_ids);
  batch.class_labels = torch::tensor({1, 0});
  return batch;
}

// The archive's own forward, run by LibTorch's TorchScript interpreter.
torch::Tensor own_forward(const std::string& path, const Batch& batch) {
  auto module = torch::jit::load(path);
  module.eval();
  torch::NoGradGuard no_grad;
  return module.forward({batch.input_ids, batch.attention_mask}).toTensor();
}

std::shared_ptr<ScriptModel> custom(const std::string& name, const std::string& output = "logits") {
  auto model = std::dynamic_pointer_cast<ScriptModel>(
      load_base_model(custom_pt(name), {"float32", "cpu", 0, false, "auto", output}));
  EXPECT_NE(model, nullptr);
  return model;
}

// ------------------------------------------------------------------------------------------- a known family
class FamilyArchive : public testing::TestWithParam<std::string> {};

TEST_P(FamilyArchive, LoadsIntoTheNativeModelWithTheModulesOwnLogits) {
  auto model = load_model(stories_pt(GetParam()), {"float32", "cpu"});
  auto reference = load_model(stories_dir(), {"float32", "cpu"});
  auto batch = sample_batch();
  torch::NoGradGuard no_grad;
  auto logits = model->logits(batch.input_ids, batch.attention_mask);
  EXPECT_TRUE(torch::equal(logits, reference->logits(batch.input_ids, batch.attention_mask)));
  // The archive's own code computes the same function (compared where tokens are real).
  auto own = own_forward(stories_pt(GetParam()), batch);
  auto real = batch.attention_mask.to(torch::kBool);
  EXPECT_LT((logits.index({real}) - own.index({real})).abs().max().item<double>(), 1e-4);
}

TEST_P(FamilyArchive, LoraTrainsExactlyAsOnTheSafetensorsCheckpoint) {
  auto losses = [](const std::string& path) {
    auto model = load_model(path, {"float32", "cpu"});
    torch::manual_seed(7);
    auto method = method_from_yaml("{method: lora, r: 4, target_modules: [q_proj, v_proj, down_proj]}\n");
    method->attach(*model);
    std::vector<torch::Tensor> parameters;
    for (const auto& p : method->trainable_parameters()) parameters.push_back(p.tensor);
    torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(1e-2));
    std::vector<double> out;
    model->train();
    for (int step = 0; step < 4; ++step) {
      auto loss = training_loss(*model, sample_batch());
      loss.backward();
      optimizer.step();
      optimizer.zero_grad();
      out.push_back(loss.item<double>());
    }
    return out;
  };
  auto from_archive = losses(stories_pt(GetParam()));
  EXPECT_EQ(from_archive, losses(stories_dir()));
  EXPECT_LT(from_archive.back(), from_archive.front());
}

INSTANTIATE_TEST_SUITE_P(ScriptedAndTraced, FamilyArchive, testing::Values("scripted", "traced"));

TEST(FamilyArchive, ArchCustomAdaptsTheSameLayersAsTheNativeModel) {
  // The same archive as a module of unknown architecture: a LoRA adapter trained on the native model loads onto
  // its graph at the same paths and gives the same logits (the generic injection checked against the native one).
  auto native = load_model(stories_dir(), {"float32", "cpu"});
  torch::manual_seed(3);
  auto method = method_from_yaml("{method: lora, r: 4, target_modules: [q_proj, v_proj, up_proj]}\n");
  method->attach(*native);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : method->trainable_parameters()) p.tensor.normal_(0.0, 0.05);  // B = 0 would prove nothing
  }
  auto dir = test::temp_dir("ts-native-adapter");
  save_adapter(dir, *method, stories_dir());
  auto script = load_base_model(stories_pt("scripted"), {"float32", "cpu", 0, false, "custom", "logits"});
  ASSERT_NE(dynamic_cast<ScriptModel*>(script.get()), nullptr);
  auto loaded = load_adapter(dir, *script);
  EXPECT_EQ(loaded->targets(), method->targets());
  auto batch = sample_batch();
  torch::NoGradGuard no_grad;
  native->eval();
  script->eval();
  auto expected = native->logits(batch.input_ids, batch.attention_mask);
  auto got = dynamic_cast<ScriptModel&>(*script).forward(batch);
  auto real = batch.attention_mask.to(torch::kBool);
  EXPECT_LT((expected.index({real}) - got.index({real})).abs().max().item<double>(), 1e-4);
}

// ------------------------------------------------------------------------------------------- an unknown architecture
class CustomArchive : public testing::TestWithParam<std::string> {};

TEST_P(CustomArchive, FindsTheLinearLayersAndTheHead) {
  auto model = custom(GetParam());
  EXPECT_EQ(model->output(), ScriptModel::Output::token_logits);
  EXPECT_EQ(model->config().vocab_size, 512);
  std::vector<std::string> paths;
  for (auto& [path, projection] : model->projections()) paths.push_back(path);
  EXPECT_EQ(paths, (std::vector<std::string>{"blocks.0.fc_in", "blocks.0.fc_out", "blocks.1.fc_in", "blocks.1.fc_out",
                                             "head"}));
  EXPECT_TRUE(model->is_output_head("head"));
  EXPECT_FALSE(model->is_output_head("blocks.0.fc_in"));
  for (const auto& p : model->parameters()) EXPECT_FALSE(p.requires_grad());
}

TEST_P(CustomArchive, MethodsAreTheIdentityAtInitialisation) {
  auto batch = sample_batch();
  auto own = own_forward(custom_pt(GetParam()), batch);
  for (const std::string peft :
       {"{method: lora, r: 4, target_modules: all-linear}",
        "{method: ia3, target_modules: [fc_in, fc_out], feedforward_modules: [fc_out]}", "{method: bitfit}"}) {
    auto model = custom(GetParam());
    auto method = method_from_yaml(peft + "\n");
    method->attach(*model);
    model->eval();
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(model->forward(batch), own)) << peft;
  }
}

TEST_P(CustomArchive, OnlyInjectedParametersTrainAndTheModuleStaysBitIdentical) {
  auto model = custom(GetParam());
  auto module_before = torch::jit::load(custom_pt(GetParam()));
  torch::manual_seed(5);
  auto method = method_from_yaml("{method: lora, r: 4, target_modules: [fc_in, fc_out, head]}\n");
  method->attach(*model);
  std::vector<torch::Tensor> parameters;
  for (const auto& p : method->trainable_parameters()) parameters.push_back(p.tensor);
  EXPECT_EQ(parameters.size(), 10u);
  torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(1e-2));
  model->train();
  std::vector<double> losses;
  for (int step = 0; step < 5; ++step) {
    auto loss = model->loss(sample_batch());
    loss.backward();
    if (step == 0) {
      for (const auto& item : model->named_parameters()) {
        bool injected = item.key().find("lora_") != std::string::npos;
        EXPECT_EQ(item.value().grad().defined(), injected) << item.key();
        if (item.key().find("lora_B") != std::string::npos)
          EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0);
      }
    }
    optimizer.step();
    optimizer.zero_grad();
    losses.push_back(loss.item<double>());
  }
  EXPECT_LT(losses.back(), losses.front());
  // The TorchScript module's own tensors did not move (the adapter is all that trained).
  std::map<std::string, torch::Tensor> before;
  for (const auto& item : module_before.named_parameters()) before[item.name] = item.value;
  size_t compared = 0;
  for (const auto& item : model->named_parameters()) {
    if (!before.count(item.key())) continue;
    EXPECT_TRUE(torch::equal(item.value(), before[item.key()])) << item.key();
    ++compared;
  }
  EXPECT_EQ(compared, before.size());
}

TEST_P(CustomArchive, MergedArchiveComputesWhatBasePlusAdapterDoes) {
  for (const std::string peft :
       {"{method: lora, r: 4, target_modules: [fc_in, fc_out, head]}",
        "{method: ia3, target_modules: [fc_in, fc_out], feedforward_modules: [fc_out]}", "{method: bitfit}"}) {
    auto model = custom(GetParam());
    auto method = method_from_yaml(peft + "\n");
    method->attach(*model);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : method->trainable_parameters()) p.tensor.add_(torch::randn_like(p.tensor) * 0.1);
    }
    model->eval();
    auto batch = sample_batch();
    torch::NoGradGuard no_grad;
    auto adapted = model->forward(batch);
    EXPECT_FALSE(torch::allclose(adapted, own_forward(custom_pt(GetParam()), batch))) << peft;
    method->merge(*model);
    auto out = test::temp_dir("ts-merge") + "/merged.pt";
    model->save(out);
    EXPECT_LT((own_forward(out, batch) - adapted).abs().max().item<double>(), 1e-5) << peft;
  }
}

INSTANTIATE_TEST_SUITE_P(ScriptedAndTraced, CustomArchive, testing::Values("gru_lm", "gru_lm_traced"));

TEST(CustomArchive, AdapterReloadsOntoTheArchive) {
  auto model = custom("gru_lm");
  auto method = method_from_yaml("{method: lora, r: 4, target_modules: [fc_in, head]}\n");
  method->attach(*model);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : method->trainable_parameters()) p.tensor.normal_(0.0, 0.1);
  }
  auto dir = test::temp_dir("ts-adapter");
  save_adapter(dir, *method, custom_pt("gru_lm"));
  auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["base_model_name_or_path"], custom_pt("gru_lm"));
  auto reloaded = custom("gru_lm");
  auto loaded = load_adapter(dir, *reloaded);
  EXPECT_EQ(loaded->adapter_tensors().count("base_model.model.blocks.1.fc_in.lora_A.weight"), 1u);
  model->eval();
  reloaded->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model->forward(sample_batch()), reloaded->forward(sample_batch())));
}

TEST(CustomArchive, ALossModuleScoresAsItsLogitsTwin) {
  // gru_lm_loss.pt is gru_lm.pt computing its own loss from labels: the same loss, and the same per-example means.
  auto logits = custom("gru_lm");
  auto loss = custom("gru_lm_loss", "loss");
  EXPECT_EQ(loss->output(), ScriptModel::Output::loss);
  logits->eval();
  loss->eval();
  torch::NoGradGuard no_grad;
  Batch one = sample_batch();
  one.input_ids = one.input_ids.narrow(0, 0, 1);
  one.attention_mask = one.attention_mask.narrow(0, 0, 1);
  one.labels = one.labels.narrow(0, 0, 1);
  EXPECT_NEAR(loss->loss(one).item<double>(), logits->loss(one).item<double>(), 1e-5);
  auto batch = sample_batch();
  auto rows = scored_positions(batch.labels).row;
  auto a = logits->scored_nll(batch), b = loss->scored_nll(batch);
  for (int64_t row = 0; row < 2; ++row) {
    auto mine = (rows == row).nonzero().squeeze(1);
    EXPECT_NEAR(a.index_select(0, mine).mean().item<double>(), b.index_select(0, mine).mean().item<double>(), 1e-5);
  }
}

TEST(CustomArchive, AClassifierReturnsClassLogits) {
  auto model = custom("classifier");
  EXPECT_EQ(model->output(), ScriptModel::Output::class_logits);
  EXPECT_EQ(model->config().num_labels, 2);
  EXPECT_TRUE(model->is_output_head("out"));
  auto method = method_from_yaml("{method: lora, r: 2, target_modules: [proj, out]}\n");
  method->attach(*model);
  model->train();
  auto loss = training_loss(*model, sample_batch());
  loss.backward();
  EXPECT_GT(loss.item<double>(), 0.0);
}

// ------------------------------------------------------------------------------------------- refusals
TEST(CustomArchive, BadArchivesAndContractsAreRefusedInOneLine) {
  auto error = [](const std::string& path, const std::string& arch = "auto", const std::string& output = "logits") {
    return test::error_of([&] { load_base_model(path, {"float32", "cpu", 0, false, arch, output}); });
  };
  EXPECT_NE(error(custom_pt("state_dict")).find("not a TorchScript archive but a torch.save() pickle"),
            std::string::npos);
  auto text = test::write_text(test::temp_dir("ts-text") + "/model.pt", "not a zip\n");
  EXPECT_NE(error(text).find("not a TorchScript archive (not a zip file"), std::string::npos);
  EXPECT_NE(error(custom_pt("missing")).find("model file not found"), std::string::npos);
  EXPECT_NE(error(custom_pt("bad_signature")).find("argument 'temperature' has no default"), std::string::npos);
  EXPECT_NE(error(custom_pt("no_linear")).find("found no linear layer"), std::string::npos);
  EXPECT_NE(error(custom_pt("gru_lm"), "auto", "loss").find("takes no labels"), std::string::npos);
  EXPECT_NE(error(custom_pt("gru_lm_loss")).find("argument 'labels' has no default"), std::string::npos);
  EXPECT_NE(error(custom_pt("gru_lm"), "llama").find("model.arch llama needs the model's config.json"),
            std::string::npos);
  EXPECT_NE(error(stories_pt("scripted"), "gpt2").find("config.json says model_type llama"), std::string::npos);
}

TEST(CustomArchive, AForwardTheModuleRefusesIsOneLineNamingTheBatch) {
  auto model = custom("gru_lm");
  Batch batch = sample_batch();
  batch.input_ids[0][1] = 600;  // past the embedding's 512 rows
  auto message = test::error_of([&] { model->forward(batch); });
  EXPECT_NE(message.find("gru_lm.pt: forward failed on a batch of shape [2, 8]: "), std::string::npos) << message;
  EXPECT_NE(message.find("index out of range"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
}

TEST(CustomArchive, MethodsThatNeedTheArchitectureSaySoAndNameThoseThatApply) {
  for (const std::string peft :
       {"{method: prefix_tuning, num_virtual_tokens: 4}", "{method: prompt_tuning, num_virtual_tokens: 4}",
        "{method: adapter}", "{method: lst}"}) {
    auto model = custom("gru_lm");
    auto method = method_from_yaml(peft + "\n");
    auto message = test::error_of([&] { method->attach(*model); });
    EXPECT_NE(message.find("needs to know the model's architecture"), std::string::npos) << message;
    EXPECT_NE(message.find("lora, ia3, bitfit and full apply"), std::string::npos) << message;
  }
  auto model = custom("gru_lm");
  auto no_default = test::error_of([&] { method_from_yaml("{method: lora}\n")->attach(*model); });
  EXPECT_NE(no_default.find("has no default target modules"), std::string::npos) << no_default;
  EXPECT_NE(no_default.find("fc_in, fc_out"), std::string::npos) << no_default;
  auto none = test::error_of([&] { method_from_yaml("{method: lora, target_modules: [q_proj]}\n")->attach(*model); });
  EXPECT_NE(none.find("matched no module; available: fc_in, fc_out"), std::string::npos) << none;
}

}  // namespace
}  // namespace peft
