// peft-eval --icl-shots K --icl-from TRAIN_FILE on the real stories260K and the embedded E2E slice: demonstrations
// drawn reproducibly, unscored, paid for in FLOPs; classification and generation take them too; bad settings are one
// line each.
#include <gtest/gtest.h>

#include "cli_testing.h"

namespace peft {
namespace {

using test::expect_one_line_error;
using test::tool;

std::string e2e(const std::string& file) { return test::source_dir() + "/third_party/e2e_nlg_sample/" + file; }

std::string eval_command(const std::string& extra) {
  return tool("peft-eval") + " --threads 1 --model " + test::model_dir() + " --data " + e2e("test.csv") +
         " --max-length 96 " + extra;
}

TEST(InContextEndToEnd, DemonstrationsAreReproducibleUnscoredAndPaidForInFlops) {
  std::string work = test::temp_dir("icl-eval");
  auto zero = test::run_command(eval_command("--json " + work + "/zero.json"));
  ASSERT_EQ(zero.exit_code, 0) << zero.output;
  auto shots = test::run_command(
      eval_command("--icl-shots 3 --icl-from " + e2e("dev.csv") + " --seed 4 --json " + work + "/three.json"));
  ASSERT_EQ(shots.exit_code, 0) << shots.output;
  EXPECT_NE(shots.output.find("in-context: 3 demonstration(s) from " + e2e("dev.csv") + " (seed 4)"), std::string::npos)
      << shots.output;
  auto without = nlohmann::json::parse(test::read_text(work + "/zero.json"));
  auto with = nlohmann::json::parse(test::read_text(work + "/three.json"));
  // The same held-out tokens are scored; only the context before them differs.
  EXPECT_EQ(with["metrics"]["tokens"], without["metrics"]["tokens"]);
  EXPECT_NE(with["metrics"]["loss"].get<double>(), without["metrics"]["loss"].get<double>());
  EXPECT_EQ(with["icl"]["drawn"].size(), 3u);
  EXPECT_GT(with["icl"]["demonstration_tokens"].get<int64_t>(), 30);
  EXPECT_GT(with["flops_per_example"].get<double>(), 2.0 * without["flops_per_example"].get<double>());
  auto again = test::run_command(eval_command("--icl-shots 3 --icl-from " + e2e("dev.csv") + " --seed 4"));
  EXPECT_NEAR(test::parse_loss(again.output), with["metrics"]["loss"].get<double>(), 1e-4);
  auto other_seed = test::run_command(eval_command("--icl-shots 3 --icl-from " + e2e("dev.csv") + " --seed 5"));
  EXPECT_GT(std::abs(test::parse_loss(other_seed.output) - with["metrics"]["loss"].get<double>()), 1e-4);
}

TEST(InContextEndToEnd, GenerationAndClassificationTakeDemonstrationsToo) {
  std::string work = test::temp_dir("icl-tasks");
  auto generation = test::run_command(eval_command("--task generation --max-new-tokens 6 --icl-shots 2 --icl-from " +
                                                   e2e("dev.csv") + " --json " + work + "/g.json"));
  ASSERT_EQ(generation.exit_code, 0) << generation.output;
  EXPECT_NE(generation.output.find("in-context: 2 demonstration(s)"), std::string::npos) << generation.output;
  auto numbers = nlohmann::json::parse(test::read_text(work + "/g.json"));
  EXPECT_EQ(numbers["metrics"]["examples"], 30);
  EXPECT_GT(numbers["flops_per_example"].get<double>(), 0.0);

  auto train = test::write_text(work + "/train.jsonl", test::sentiment_jsonl(20, 1));
  auto eval = test::write_text(work + "/eval.jsonl", test::sentiment_jsonl(10, 2));
  auto classification =
      test::run_command(tool("peft-eval") + " --threads 1 --model " + test::model_dir() + " --task classification" +
                        " --data " + eval + " --icl-shots 4 --icl-from " + train);
  ASSERT_EQ(classification.exit_code, 0) << classification.output;
  EXPECT_NE(classification.output.find("in-context: 4 demonstration(s)"), std::string::npos) << classification.output;
  EXPECT_GE(test::parse_accuracy(classification.output).first, 0.0) << classification.output;
}

TEST(InContextEndToEnd, BadSettingsAreOneLineEach) {
  expect_one_line_error(test::run_command(eval_command("--icl-shots 2")), "--icl-shots needs --icl-from TRAIN_FILE");
  expect_one_line_error(test::run_command(eval_command("--icl-from " + e2e("dev.csv"))),
                        "--icl-from needs --icl-shots K");
  expect_one_line_error(test::run_command(eval_command("--icl-shots 40 --icl-from " + e2e("dev.csv"))),
                        "positions of the context; use fewer shots");
  std::string work = test::temp_dir("icl-bad");
  auto tiny = test::write_text(work + "/tiny.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n");
  expect_one_line_error(test::run_command(eval_command("--icl-shots 2 --icl-from " + tiny)),
                        "holds 1 example(s), fewer than the 2 demonstrations");
}

}  // namespace
}  // namespace peft
