// TorchScript base models through the real tools. A module of unknown architecture (tests/fixtures/torchscript/
// custom) learns the shipped text with LoRA, (IA)³ or BitFit at its linear layers; peft-eval reproduces base +
// adapter; peft-merge writes a new .pt that evaluates alone to the same loss. A scripted stories260K (a known
// family) trains exactly as its safetensors directory does. Bad archives and methods are one-line errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "cli_testing.h"

namespace peft {
namespace {

namespace fs = std::filesystem;
using test::data;
using test::expect_one_line_error;
using test::parse_loss;
using test::tool;

std::string custom_pt(const std::string& name) { return test::fixture("torchscript/custom/" + name + ".pt"); }
std::string tokenizer() { return test::model_dir() + "/tokenizer.model"; }

// "held-out loss: A (base) -> B (adapted)" -> (A, B)
std::pair<double, double> held_out(const std::string& output) {
  std::smatch match;
  if (!std::regex_search(output, match, std::regex("held-out loss: ([0-9.]+) \\(base\\) -> ([0-9.]+)"))) {
    return {-1, -1};
  }
  return {std::stod(match[1]), std::stod(match[2])};
}

std::string run_yaml(const std::string& work, const std::string& model, const std::string& extra_model,
                     const std::string& peft, double learning_rate) {
  return test::write_text(work + "/run.yaml",
                          "model: {path: " + model + ", device: cpu" + extra_model + "}\n" +
                              "data: {train: " + data("train.txt") + ", eval: " + data("eval.txt") +
                              ", max_length: 64, max_eval_examples: 24}\n" + "peft: " + peft + "\n" +
                              "train: {max_steps: 40, batch_size: 8, learning_rate: " + std::to_string(learning_rate) +
                              ", log_every: 20, threads: 1}\n" + "output: {dir: " + work + "/out}\n");
}

struct CustomCase {
  std::string name;
  std::string peft;
  double learning_rate;
};
std::ostream& operator<<(std::ostream& out, const CustomCase& c) { return out << c.name; }

class CustomModuleEndToEnd : public testing::TestWithParam<CustomCase> {};

TEST_P(CustomModuleEndToEnd, TrainEvaluateMerge) {
  const auto& c = GetParam();
  std::string work = test::temp_dir("e2e-ts-" + c.name);
  std::string config = run_yaml(work, custom_pt("gru_lm"), ", tokenizer: " + tokenizer(), c.peft, c.learning_rate);
  auto train = test::run_command(tool("peft-train") + " --config " + config);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  auto [base, adapted] = held_out(train.output);
  EXPECT_LT(adapted, base - 0.1) << train.output;
  std::set<std::string> files;
  for (const auto& entry : fs::directory_iterator(work + "/out")) files.insert(entry.path().filename());
  EXPECT_EQ(files, (std::set<std::string>{"adapter_config.json", "adapter_model.safetensors", "run_config.yaml",
                                          "train_log.jsonl"}));

  std::string eval = " --threads 1 --max-length 64 --tokenizer " + tokenizer() + " --data " + data("eval.txt");
  auto base_eval = test::run_command(tool("peft-eval") + " --model " + custom_pt("gru_lm") + eval);
  auto with_adapter =
      test::run_command(tool("peft-eval") + " --model " + custom_pt("gru_lm") + " --adapter " + work + "/out" + eval);
  ASSERT_EQ(with_adapter.exit_code, 0) << with_adapter.output;
  EXPECT_LT(parse_loss(with_adapter.output), parse_loss(base_eval.output) - 0.1) << with_adapter.output;

  auto merge = test::run_command(tool("peft-merge") + " --model " + custom_pt("gru_lm") + " --adapter " + work +
                                 "/out --out " + work + "/merged.pt");
  ASSERT_EQ(merge.exit_code, 0) << merge.output;
  auto merged = test::run_command(tool("peft-eval") + " --model " + work + "/merged.pt" + eval);
  ASSERT_EQ(merged.exit_code, 0) << merged.output;
  EXPECT_NEAR(parse_loss(merged.output), parse_loss(with_adapter.output), 2e-4) << merged.output;
}

INSTANTIATE_TEST_SUITE_P(
    Methods, CustomModuleEndToEnd,
    testing::Values(
        CustomCase{"lora", "{method: lora, r: 8, lora_alpha: 16, target_modules: [fc_in, fc_out, head]}", 1e-2},
        CustomCase{"ia3", "{method: ia3, target_modules: [fc_in, fc_out, head], feedforward_modules: [fc_out]}", 5e-2},
        CustomCase{"bitfit", "{method: bitfit}", 2e-2}),
    [](const testing::TestParamInfo<CustomCase>& info) { return info.param.name; });

TEST(TorchScriptEndToEnd, FullFineTuningWritesTheTrainedModule) {
  std::string work = test::temp_dir("e2e-ts-full");
  std::string config = run_yaml(work, custom_pt("gru_lm"), ", tokenizer: " + tokenizer(), "{method: full}", 1e-3);
  auto train = test::run_command(tool("peft-train") + " --config " + config);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  std::set<std::string> files;
  for (const auto& entry : fs::directory_iterator(work + "/out")) files.insert(entry.path().filename());
  EXPECT_EQ(files, (std::set<std::string>{"model.pt", "run_config.yaml", "train_log.jsonl"}));
  std::string eval = " --threads 1 --max-length 64 --tokenizer " + tokenizer() + " --data " + data("eval.txt");
  auto base = test::run_command(tool("peft-eval") + " --model " + custom_pt("gru_lm") + eval);
  auto trained = test::run_command(tool("peft-eval") + " --model " + work + "/out/model.pt" + eval);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_LT(parse_loss(trained.output), parse_loss(base.output) - 0.1) << trained.output;
}

TEST(TorchScriptEndToEnd, ALossModuleTrainsAndEvaluates) {
  std::string work = test::temp_dir("e2e-ts-loss");
  std::string config = run_yaml(work, custom_pt("gru_lm_loss"), ", output: loss, tokenizer: " + tokenizer(),
                                "{method: lora, r: 8, target_modules: [fc_in, fc_out, head]}", 1e-2);
  auto train = test::run_command(tool("peft-train") + " --config " + config);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  auto [base, adapted] = held_out(train.output);
  EXPECT_LT(adapted, base - 0.1) << train.output;
  // The same adapter on the logits twin of the same weights gives the same held-out loss (output from run_config).
  std::string eval = " --threads 1 --max-length 64 --tokenizer " + tokenizer() + " --data " + data("eval.txt") +
                     " --adapter " + work + "/out";
  auto own = test::run_command(tool("peft-eval") + " --model " + custom_pt("gru_lm_loss") + eval);
  auto twin = test::run_command(tool("peft-eval") + " --model " + custom_pt("gru_lm") + eval + " --output logits");
  ASSERT_EQ(own.exit_code, 0) << own.output;
  ASSERT_EQ(twin.exit_code, 0) << twin.output;
  EXPECT_NEAR(parse_loss(own.output), parse_loss(twin.output), 1e-4) << own.output << twin.output;
}

TEST(TorchScriptEndToEnd, AClassifierModuleLearnsWithItsHead) {
  std::string work = test::temp_dir("e2e-ts-cls");
  std::string train = test::write_text(work + "/train.jsonl", test::sentiment_jsonl(160, 1));
  std::string eval = test::write_text(work + "/eval.jsonl", test::sentiment_jsonl(40, 2));
  std::string config = test::write_text(
      work + "/run.yaml", "model: {path: " + custom_pt("classifier") + ", device: cpu, tokenizer: " + tokenizer() +
                              "}\n" + "data: {task: classification, train: " + train + ", eval: " + eval +
                              ", label_names: [negative, positive], max_length: 24}\n" +
                              "peft: {method: lora, r: 4, lora_alpha: 8, target_modules: [proj, out]}\n" +
                              "train: {epochs: 10, batch_size: 16, learning_rate: 0.02, threads: 1, log_every: 20}\n" +
                              "output: {dir: " + work + "/out}\n");
  auto trained = test::run_command(tool("peft-train") + " --config " + config);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  std::smatch after;
  ASSERT_TRUE(std::regex_search(trained.output, after, std::regex("after training: +(accuracy[^\n]*)")))
      << trained.output;
  auto [accuracy, majority] = test::parse_accuracy(after[1]);
  EXPECT_GT(accuracy, majority + 0.2) << trained.output;
  auto evaluated =
      test::run_command(tool("peft-eval") + " --threads 1 --task classification --model " + custom_pt("classifier") +
                        " --tokenizer " + tokenizer() + " --adapter " + work + "/out --data " + eval);
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  EXPECT_EQ(test::parse_accuracy(evaluated.output).first, accuracy) << evaluated.output;
}

TEST(TorchScriptEndToEnd, ScriptedStoriesTrainsAsItsSafetensorsDirectory) {
  std::string peft = "{method: lora, r: 4, target_modules: [q_proj, v_proj]}";
  auto run = [&](const std::string& tag, const std::string& model, const std::string& extra) {
    std::string work = test::temp_dir("e2e-ts-stories-" + tag);
    auto train = test::run_command(tool("peft-train") + " --config " + run_yaml(work, model, extra, peft, 5e-3));
    EXPECT_EQ(train.exit_code, 0) << train.output;
    return std::make_pair(held_out(train.output), work);
  };
  auto [archive, archive_work] =
      run("pt", test::fixture("torchscript/stories260k_scripted/model.pt"), ", tokenizer: " + test::model_dir());
  auto [directory, directory_work] = run("dir", test::model_dir(), "");
  EXPECT_EQ(archive, directory);
  EXPECT_LT(archive.second, archive.first);
  // Merging onto the archive writes a Hugging Face directory, which evaluates alone to base + adapter's loss.
  auto merge =
      test::run_command(tool("peft-merge") + " --model " + test::fixture("torchscript/stories260k_scripted/model.pt") +
                        " --adapter " + archive_work + "/out --out " + archive_work + "/merged");
  ASSERT_EQ(merge.exit_code, 0) << merge.output;
  EXPECT_TRUE(fs::exists(archive_work + "/merged/model.safetensors"));
  std::string eval = " --threads 1 --max-length 64 --tokenizer " + test::model_dir() + " --data " + data("eval.txt");
  auto merged = test::run_command(tool("peft-eval") + " --model " + archive_work + "/merged" + eval);
  auto adapted = test::run_command(tool("peft-eval") + " --model " + test::model_dir() + " --adapter " + archive_work +
                                   "/out" + eval);
  EXPECT_NEAR(parse_loss(merged.output), parse_loss(adapted.output), 2e-4) << merged.output << adapted.output;
}

TEST(TorchScriptEndToEnd, BadInputsAreOneLine) {
  std::string work = test::temp_dir("e2e-ts-bad");
  auto train = [&](const std::string& model, const std::string& extra, const std::string& peft) {
    return test::run_command(tool("peft-train") + " --config " + run_yaml(work, model, extra, peft, 1e-2));
  };
  std::string with_tokenizer = ", tokenizer: " + tokenizer();
  expect_one_line_error(train(custom_pt("state_dict"), with_tokenizer, "{method: lora, target_modules: [head]}"),
                        "not a TorchScript archive but a torch.save() pickle");
  expect_one_line_error(train(custom_pt("gru_lm"), with_tokenizer, "{method: prefix_tuning}"),
                        "prefix_tuning needs to know the model's architecture");
  expect_one_line_error(train(custom_pt("gru_lm"), with_tokenizer, "{method: lora, target_modules: [q_proj]}"),
                        "matched no module; available: fc_in, fc_out");
  expect_one_line_error(train(custom_pt("bad_signature"), with_tokenizer, "{method: lora, target_modules: [proj]}"),
                        "does not fit model.output: logits");
  expect_one_line_error(train(custom_pt("classifier"), with_tokenizer, "{method: lora, target_modules: [proj]}"),
                        "returns class logits; set data.task: classification");
  expect_one_line_error(train(custom_pt("gru_lm"), "", "{method: lora, target_modules: [head]}"), "tokenizer");
}

}  // namespace
}  // namespace peft
