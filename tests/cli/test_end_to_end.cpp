// The real executables on the real stories260K model: peft-train's loss falls and it writes exactly the adapter
// files; peft-eval loads them and reports a lower held-out loss than the base; bad input gives one error line.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "cli_testing.h"

namespace peft {
namespace {

namespace fs = std::filesystem;

using test::data;
using test::expect_one_line_error;
using test::model_dir;
using test::parse_loss;
using test::tool;

std::string write_config(const std::string& work) {
  return test::write_text(work + "/run.yaml",
                          "model: {path: " + model_dir() +
                              ", device: cpu}\n"
                              "data: {train: " +
                              data("train.txt") + ", eval: " + data("eval.txt") +
                              ", max_length: 64, max_eval_examples: 24}\n"
                              "peft: {method: lora, r: 8, lora_alpha: 16, target_modules: all-linear}\n"
                              "train: {max_steps: 40, batch_size: 8, learning_rate: 0.005, log_every: 10, threads: 1}\n"
                              "output: {dir: " +
                              work + "/adapter}\n");
}

// One training run, then everything that uses its adapter (ctest runs each test in its own process).
TEST(EndToEnd, TrainEvaluateAndGenerate) {
  std::string work = test::temp_dir("e2e");
  auto train = test::run_command(tool("peft-train") + " --config " + write_config(work));
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_NE(train.output.find("held-out loss: "), std::string::npos) << train.output;

  // A second run into the same directory refuses to replace the adapter.
  auto again = test::run_command(tool("peft-train") + " --config " + work + "/run.yaml");
  EXPECT_EQ(again.exit_code, 1) << again.output;
  EXPECT_NE(again.output.find("already holds an adapter"), std::string::npos) << again.output;

  // The loss falls.
  std::ifstream log(work + "/adapter/train_log.jsonl");
  std::vector<double> losses;
  std::string line;
  while (std::getline(log, line)) {
    auto record = nlohmann::json::parse(line);
    if (record.contains("loss")) losses.push_back(record["loss"].get<double>());
  }
  ASSERT_EQ(losses.size(), 40u);
  double first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[37] + losses[38] + losses[39]) / 3;
  EXPECT_LT(last, first - 0.3) << "first " << first << " last " << last;

  // Exactly the adapter files, and only adapter weights: far smaller than the 1 MB base.
  std::set<std::string> files;
  for (const auto& entry : fs::directory_iterator(work + "/adapter")) files.insert(entry.path().filename());
  EXPECT_EQ(files, (std::set<std::string>{"adapter_config.json", "adapter_model.safetensors", "run_config.yaml",
                                          "train_log.jsonl"}));
  EXPECT_LT(fs::file_size(work + "/adapter/adapter_model.safetensors"), 400000u);

  // peft-eval: the adapter lowers the held-out loss; per-example losses are written.
  std::string eval = tool("peft-eval") + " --threads 1 --model " + model_dir();
  std::string on_data = " --data " + data("eval.txt") + " --max-length 64";
  auto base = test::run_command(eval + on_data);
  auto adapted =
      test::run_command(eval + on_data + " --adapter " + work + "/adapter --per-example " + work + "/per.jsonl");
  ASSERT_EQ(base.exit_code, 0) << base.output;
  ASSERT_EQ(adapted.exit_code, 0) << adapted.output;
  double base_loss = parse_loss(base.output), adapted_loss = parse_loss(adapted.output);
  EXPECT_GT(base_loss, 0);
  EXPECT_LT(adapted_loss, base_loss - 0.2) << base.output << adapted.output;
  std::ifstream per(work + "/per.jsonl");
  int64_t count = 0;
  while (std::getline(per, line)) {
    auto record = nlohmann::json::parse(line);
    EXPECT_EQ(record["index"].get<int64_t>(), count++);
    EXPECT_GT(record["tokens"].get<int64_t>(), 0);
    EXPECT_GT(record["loss"].get<double>(), 0.0);
  }
  EXPECT_GT(count, 100);

  // peft-merge folds the adapter in; the merged model alone gives the adapted loss.
  auto merge = test::run_command(tool("peft-merge") + " --model " + model_dir() + " --adapter " + work +
                                 "/adapter --out " + work + "/merged");
  ASSERT_EQ(merge.exit_code, 0) << merge.output;
  auto merged = test::run_command(tool("peft-eval") + " --threads 1 --model " + work + "/merged" + on_data);
  ASSERT_EQ(merged.exit_code, 0) << merged.output;
  EXPECT_NEAR(parse_loss(merged.output), adapted_loss, 2e-4) << merged.output << adapted.output;

  // Generation continues the prompt.
  auto generated = test::run_command(eval + " --adapter " + work + "/adapter --prompt 'ROMEO:' --max-new-tokens 20");
  ASSERT_EQ(generated.exit_code, 0) << generated.output;
  std::string text = "\n" + generated.output;  // the text follows any log lines from stderr
  size_t prompt = text.find("\nROMEO:");
  ASSERT_NE(prompt, std::string::npos) << generated.output;
  EXPECT_GT(text.size() - prompt, 12u) << generated.output;
}

TEST(EndToEnd, DryRunPrintsModulesAndPeftLine) {
  std::string work = test::temp_dir("e2e-dry");
  auto result = test::run_command(tool("peft-train") + " --config " + write_config(work) + " --dry-run");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("model.layers.4.mlp.down_proj"), std::string::npos) << result.output;
  EXPECT_TRUE(std::regex_search(result.output, std::regex("trainable params: [0-9,]+ \\|\\| all params: [0-9,]+ "
                                                          "\\|\\| trainable%: [0-9.]+")))
      << result.output;
  EXPECT_FALSE(fs::exists(work + "/adapter/adapter_model.safetensors"));
}

TEST(EndToEnd, BadInputsGiveOneClearError) {
  std::string work = test::temp_dir("e2e-bad");
  std::string train = tool("peft-train") + " --config " + write_config(work) + " ";
  expect_one_line_error(test::run_command(tool("peft-train") + " --config /nonexistent.yaml"), "/nonexistent.yaml");
  expect_one_line_error(test::run_command(train + "train.lerning_rate=0.1"), "did you mean 'learning_rate'");
  expect_one_line_error(test::run_command(train + "peft.method=lroa"), "unknown PEFT method 'lroa'");
  expect_one_line_error(test::run_command(train + "'peft.target_modules=[q_prj]'"), "matched no module");
  expect_one_line_error(test::run_command(train + "model.path=/nonexistent"), "/nonexistent");
  expect_one_line_error(test::run_command(train + "model.tokenizer=" + work), "no tokenizer found");
  std::string empty = test::write_text(work + "/empty.jsonl", "\n");
  expect_one_line_error(test::run_command(train + "data.train=" + empty), "no examples");
  std::string malformed = test::write_text(work + "/bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": oops}\n");
  expect_one_line_error(test::run_command(train + "data.train=" + malformed), "bad.jsonl:2");
  expect_one_line_error(test::run_command(tool("peft-eval") + " --model " + model_dir() +
                                          " --adapter /nonexistent --data " + data("eval.txt")),
                        "adapter directory not found");
}

// peft-tokenize prints the ids as a JSON list (here the SentencePiece tokenizer of stories260K, which
// tests/io checks against libsentencepiece), and fails in one line without a tokenizer.
TEST(EndToEnd, TokenizePrintsIdsAsJson) {
  auto result = test::run_command(tool("peft-tokenize") + " --model " + model_dir() + " 'Once upon a time'");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "[403, 407, 261, 378]\n");
  std::string file = test::write_text(test::temp_dir("tokenize") + "/text.txt", "Once upon a time");
  auto from_file = test::run_command(tool("peft-tokenize") + " --model " + model_dir() + " --file " + file);
  EXPECT_EQ(from_file.output, result.output);
  expect_one_line_error(test::run_command(tool("peft-tokenize") + " --model " + test::temp_dir("no-tokenizer") + " x"),
                        "no tokenizer found in");
}

}  // namespace
}  // namespace peft
