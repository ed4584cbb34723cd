// scripts/sweep.sh on the real tools: a 6-point grid on stories260K is interrupted with SIGINT while it runs, keeps
// the points that had finished, and a re-run completes the rest without redoing them; the table is sorted by the
// metric and names the best point; an override that names no config key fails before anything trains.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <sstream>

#include "cli_testing.h"

namespace peft {
namespace {

namespace fs = std::filesystem;

std::string sweep_command(const std::string& work, const std::string& more_grids = "") {
  std::string config = test::write_text(
      work + "/base.yaml",
      "model: {path: " + test::model_dir() + ", device: cpu}\n" + "data: {train: " + test::data("train.txt") +
          ", eval: " + test::data("eval.txt") + ", max_length: 32, max_eval_examples: 8}\n" +
          "peft: {method: lora, r: 4, target_modules: [q_proj, v_proj]}\n" +
          "train: {max_steps: 6, batch_size: 4, log_every: 3, threads: 1}\n" + "output: {dir: " + work + "/unused}\n");
  return "bash " + test::source_dir() + "/scripts/sweep.sh --bin " + test::binary_dir() + " --config " + config +
         " --out " + work + "/sweep --grid peft.r=2,4,8 --grid train.learning_rate=0.001,0.01" + more_grids +
         " --jobs 2 -- --threads 1";
}

std::vector<std::string> finished(const std::string& work) {
  std::vector<std::string> names;
  if (!fs::exists(work + "/sweep")) return names;
  for (const auto& entry : fs::directory_iterator(work + "/sweep")) {
    if (fs::exists(entry.path() / "DONE")) names.push_back(entry.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Sweep, InterruptedSweepResumesWithoutRedoingFinishedPoints) {
  std::string work = test::temp_dir("sweep");
  // Job control gives the sweep its own process group, where SIGINT is not ignored (as in a terminal).
  auto interrupted = test::run_command("bash -c 'set -m; " + sweep_command(work) + " > " + work +
                                       "/first.log 2>&1 & pid=$!; " + "for i in $(seq 600); do [ $(ls " + work +
                                       "/sweep/*/DONE 2>/dev/null | wc -l) -ge 2 ] && break; sleep 0.1; done; " +
                                       "kill -INT $pid; wait $pid; echo exit=$?'");
  std::string first_log = test::read_text(work + "/first.log");
  EXPECT_NE(interrupted.output.find("exit=130"), std::string::npos) << interrupted.output << first_log;
  EXPECT_NE(first_log.find("interrupted;"), std::string::npos) << first_log;
  auto kept = finished(work);
  ASSERT_GE(kept.size(), 2u) << first_log;
  ASSERT_LT(kept.size(), 6u) << first_log;
  std::map<std::string, std::string> results_before;
  for (const auto& name : kept) results_before[name] = test::read_text(work + "/sweep/" + name + "/result.json");

  auto resumed = test::run_command(sweep_command(work));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(finished(work).size(), 6u) << resumed.output;
  for (const auto& [name, before] : results_before) {  // not redone: the same result, reported as skipped
    EXPECT_EQ(test::read_text(work + "/sweep/" + name + "/result.json"), before) << name;
  }
  size_t skipped = 0;
  for (size_t at = resumed.output.find("already finished, skipped"); at != std::string::npos;
       at = resumed.output.find("already finished, skipped", at + 1)) {
    ++skipped;
  }
  EXPECT_EQ(skipped, kept.size()) << resumed.output;

  // The table: 6 rows sorted by held-out loss (ascending), the best one named.
  auto split = [](const std::string& line) {
    std::vector<std::string> fields(1);
    for (char c : line) {
      if (c == ',') {
        fields.emplace_back();
      } else {
        fields.back().push_back(c);
      }
    }
    return fields;
  };
  std::istringstream csv(test::read_text(work + "/sweep/results.csv"));
  std::string line;
  std::getline(csv, line);
  auto header = split(line);
  EXPECT_EQ(header.front(), "point");
  size_t loss_column = std::find(header.begin(), header.end(), "loss") - header.begin();
  ASSERT_LT(loss_column, header.size()) << line;
  std::vector<double> losses;
  while (std::getline(csv, line)) losses.push_back(std::stod(split(line).at(loss_column)));
  ASSERT_EQ(losses.size(), 6u);
  EXPECT_TRUE(std::is_sorted(losses.begin(), losses.end()));
  EXPECT_NE(resumed.output.find("best point by loss: "), std::string::npos) << resumed.output;
  EXPECT_TRUE(fs::exists(work + "/sweep/results.md"));
}

TEST(Sweep, AnOverrideNamingNoConfigKeyFailsBeforeTraining) {
  std::string work = test::temp_dir("sweep-bad");
  auto result = test::run_command(sweep_command(work, " --grid peft.rank=2,4"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("unknown key 'peft.rank'"), std::string::npos) << result.output;
  EXPECT_TRUE(finished(work).empty());
}

TEST(Sweep, AMetricTheTaskDoesNotReportFailsBeforeTraining) {
  std::string work = test::temp_dir("sweep-metric");
  std::string command = sweep_command(work);
  command.insert(command.find(" --jobs"), " --metric accuracy");
  auto result = test::run_command(command);
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_NE(result.output.find("--metric accuracy does not fit the task language_modeling (its metrics: loss, "
                               "perplexity, tokens, examples)"),
            std::string::npos)
      << result.output;
  EXPECT_TRUE(finished(work).empty());
}

}  // namespace
}  // namespace peft
