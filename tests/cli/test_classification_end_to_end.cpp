// Classification through the real tools, both ways: a BERT encoder with a head (the tiny fixture and its
// 60-word vocabulary) and rank classification with the causal stories260K. peft-train reports held-out
// accuracy before and after; peft-eval --task classification reproduces it from the saved adapter; bad inputs
// are one line.
#include <gtest/gtest.h>

#include "cli_testing.h"

namespace peft {
namespace {

using test::expect_one_line_error;
using test::parse_accuracy;
using test::sentiment_jsonl;
using test::tool;

TEST(ClassificationEndToEnd, BertHeadLearnsAndEvalAgrees) {
  std::string work = test::temp_dir("e2e-bert-cls");
  std::string train = test::write_text(work + "/train.jsonl", sentiment_jsonl(160, 1));
  std::string eval = test::write_text(work + "/eval.jsonl", sentiment_jsonl(40, 2));
  std::string model = test::fixture("encoders/bert_tiny");
  std::string config = test::write_text(
      work + "/run.yaml", "model: {path: " + model + ", device: cpu, new_head: true}\n" +
                              "data: {task: classification, train: " + train + ", eval: " + eval +
                              ", label_names: [negative, positive], max_length: 16}\n" +
                              "peft: {method: lora, r: 4, lora_alpha: 8, target_modules: all-linear}\n" +
                              "train: {epochs: 10, batch_size: 16, learning_rate: 0.005, threads: 1, log_every: 20}\n" +
                              "output: {dir: " + work + "/out}\n");
  auto trained = test::run_command(tool("peft-train") + " --config " + config);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  std::smatch after;
  ASSERT_TRUE(std::regex_search(trained.output, after, std::regex("after training: +(accuracy[^\n]*)")))
      << trained.output;
  auto [accuracy, majority] = parse_accuracy(after[1]);
  EXPECT_GT(accuracy, majority + 0.2) << trained.output;

  auto config_json = nlohmann::json::parse(test::read_text(work + "/out/adapter_config.json"));
  EXPECT_EQ(config_json["task_type"], "SEQ_CLS");
  EXPECT_EQ(config_json["modules_to_save"], nlohmann::json({"classifier"}));

  auto evaluated = test::run_command(tool("peft-eval") + " --threads 1 --task classification --model " + model +
                                     " --adapter " + work + "/out --data " + eval + " --max-length 16");
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  EXPECT_EQ(parse_accuracy(evaluated.output).first, accuracy) << evaluated.output;  // labels from run_config.yaml
}

TEST(ClassificationEndToEnd, RankClassificationWithACausalLm) {
  std::string work = test::temp_dir("e2e-rank-cls");
  std::string train = test::write_text(work + "/train.jsonl", sentiment_jsonl(96, 3));
  std::string eval = test::write_text(work + "/eval.jsonl", sentiment_jsonl(24, 4));
  std::string config = test::write_text(
      work + "/run.yaml", "model: {path: " + test::model_dir() + ", device: cpu}\n" +
                              "data: {task: classification, train: " + train + ", eval: " + eval +
                              ", template: '{text} It was', verbalizers: [' sad', ' happy'], max_length: 64}\n" +
                              "peft: {method: lora, r: 4, lora_alpha: 8, target_modules: all-linear}\n" +
                              "train: {epochs: 2, batch_size: 8, learning_rate: 0.01, threads: 1, log_every: 20}\n" +
                              "output: {dir: " + work + "/out}\n");
  auto trained = test::run_command(tool("peft-train") + " --config " + config);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  std::smatch after;
  ASSERT_TRUE(std::regex_search(trained.output, after, std::regex("after training: +(accuracy[^\n]*)")))
      << trained.output;
  auto [accuracy, majority] = parse_accuracy(after[1]);
  EXPECT_GT(accuracy, majority) << trained.output;
  auto evaluated = test::run_command(tool("peft-eval") + " --threads 1 --task classification --model " +
                                     test::model_dir() + " --adapter " + work + "/out --data " + eval);
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.output;
  EXPECT_EQ(parse_accuracy(evaluated.output).first, accuracy) << evaluated.output;  // template from run_config.yaml
}

TEST(ClassificationEndToEnd, BadInputsAreOneLine) {
  std::string work = test::temp_dir("e2e-cls-bad");
  std::string train = test::write_text(work + "/train.jsonl", sentiment_jsonl(8, 5));
  std::string other = test::write_text(work + "/other.jsonl", "{\"text\": \"the plot\", \"label\": \"neutral\"}\n");
  std::string tsv = test::write_text(work + "/bad.tsv", "sentence\tlabel\ngood film\t1\nbad\tfilm\t0\n");
  std::string base = "model: {path: " + test::model_dir() + ", device: cpu}\npeft: {method: lora}\n" +
                     "train: {max_steps: 1}\noutput: {dir: " + work + "/out}\n";
  std::string config = test::write_text(work + "/run.yaml", base + "data: {task: classification, train: " + train +
                                                                ", label_names: [negative, positive]}\n");
  std::string run = tool("peft-train") + " --config " + config + " ";
  expect_one_line_error(test::run_command(run + "'data.verbalizers=[\" no\"]'"),
                        "1 label word(s) for 2 labels (one per label, in the order negative, positive)");
  expect_one_line_error(test::run_command(run + "data.eval=" + other), other + ":1: label 'neutral' is not one of");
  expect_one_line_error(test::run_command(run + "data.train=" + tsv), tsv + ":3:");
  expect_one_line_error(test::run_command(run + "data.task=language_modeling"),
                        "data.label_names: is only used with task: classification");
  std::string encoder = test::write_text(
      work + "/encoder.yaml", "model: {path: " + test::fixture("encoders/bert_tiny") + "}\ndata: {train: " + train +
                                  "}\npeft: {method: lora}\noutput: {dir: " + work + "/out2}\n");
  expect_one_line_error(test::run_command(tool("peft-train") + " --config " + encoder),
                        "is an encoder (BERT/RoBERTa), which classifies: set data.task: classification");
}

}  // namespace
}  // namespace peft
