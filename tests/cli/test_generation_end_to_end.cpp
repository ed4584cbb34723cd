// peft-eval --task generation with the real stories260K: batched greedy generation on an E2E-format file, outputs
// cut at stop strings, metrics on stdout and in --json, outputs in --predictions, and the reported BLEU / ROUGE-L
// being those of the written outputs.
#include <gtest/gtest.h>

#include <sstream>

#include "cli_testing.h"
#include "eval/text_metrics.h"

namespace peft {
namespace {

using test::expect_one_line_error;
using test::tool;

TEST(GenerationEndToEnd, MetricsJsonAndPredictionsAgree) {
  std::string work = test::temp_dir("e2e-generation");
  std::string data = test::write_text(work + "/e2e.csv",
                                      "mr,ref\n"
                                      "\"name[Lily], eatType[pub]\",Lily is a pub.\n"
                                      "\"name[Lily], eatType[pub]\",There is a pub called Lily.\n"
                                      "\"name[Tom], food[cake]\",Tom serves cake.\n"
                                      "\"name[Sue], area[park]\",\"Sue is in the park, by the tree.\"\n");
  auto result = test::run_command(tool("peft-eval") + " --threads 1 --model " + test::model_dir() +
                                  " --task generation --data " + data + " --template 'Once upon a time, {source}'" +
                                  " --max-new-tokens 12 --stop e --batch-size 2 --json " + work + "/m.json" +
                                  " --predictions " + work + "/p.jsonl");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_TRUE(std::regex_search(result.output, std::regex("BLEU [0-9.]+ \\(.*BP [0-9.]+\\) \\| ROUGE-L [0-9.]+ \\| "
                                                          "exact match [0-9.]+ \\(3 examples\\)")))
      << result.output;
  auto numbers = nlohmann::json::parse(test::read_text(work + "/m.json"));
  EXPECT_EQ(numbers["task"], "generation");
  EXPECT_EQ(numbers["metrics"]["examples"], 3);
  EXPECT_EQ(numbers["generation"]["max_new_tokens"], 12);

  std::vector<std::string> outputs;
  std::vector<std::vector<std::string>> references;
  std::istringstream lines(test::read_text(work + "/p.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    auto record = nlohmann::json::parse(line);
    outputs.push_back(record["output"]);
    references.push_back(record["references"]);
    EXPECT_EQ(outputs.back().find('e'), std::string::npos) << outputs.back();  // cut at the stop string
  }
  ASSERT_EQ(outputs.size(), 3u);
  EXPECT_EQ(references[0].size(), 2u);
  EXPECT_FALSE(outputs[0].empty());
  EXPECT_DOUBLE_EQ(numbers["metrics"]["bleu"].get<double>(), corpus_bleu(outputs, references).score);
  EXPECT_DOUBLE_EQ(numbers["metrics"]["rouge_l"].get<double>(), corpus_rouge_l(outputs, references));
}

TEST(GenerationEndToEnd, LossEvaluationWritesJsonToo) {
  std::string work = test::temp_dir("e2e-eval-json");
  auto result = test::run_command(tool("peft-eval") + " --threads 1 --model " + test::model_dir() + " --data " +
                                  test::data("eval.txt") + " --max-length 64 --json " + work + "/m.json");
  ASSERT_EQ(result.exit_code, 0) << result.output;
  auto numbers = nlohmann::json::parse(test::read_text(work + "/m.json"));
  EXPECT_NEAR(numbers["metrics"]["loss"].get<double>(), test::parse_loss(result.output), 1e-4);
  EXPECT_GT(numbers["metrics"]["tokens"].get<int64_t>(), 0);
}

TEST(GenerationEndToEnd, OptionsThatDoNotFitTheTaskAreOneLine) {
  expect_one_line_error(test::run_command(tool("peft-eval") + " --model " + test::model_dir() + " --data " +
                                          test::data("eval.txt") + " --stop x"),
                        "--stop needs --task generation");
  expect_one_line_error(test::run_command(tool("peft-eval") + " --model " + test::model_dir() + " --data " +
                                          test::data("eval.txt") + " --task generation"),
                        "expected a .csv (E2E NLG) or .jsonl file");
}

}  // namespace
}  // namespace peft
