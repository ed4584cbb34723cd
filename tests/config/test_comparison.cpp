#include <gtest/gtest.h>

#include "config/comparison.h"
#include "config/run_config.h"
#include "test_util.h"

namespace peft {
namespace {

TEST(ComparisonEntries, ARunConfigGivesItsPeftSectionAndOptimiserKeys) {
  auto dir = test::temp_dir("comparison_entries");
  auto lora = test::write_text(dir + "/lora.yaml",
                               "model: {path: other}\npeft: {method: lora, r: 4}\n"
                               "train: {learning_rate: 0.01, max_steps: 999}\n");
  auto entries = load_comparison_entries({lora});
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].name, "lora");
  EXPECT_EQ(entries[0].train, (std::vector<std::pair<std::string, std::string>>{{"learning_rate", "0.01"}}));
  EXPECT_EQ(entries[0].ignored, (std::vector<std::string>{"model", "train.max_steps"}));

  // The written config is the base with the entry's method and rate; steps, data and seed stay the base's.
  auto base = test::write_text(dir + "/base.yaml",
                               "model: {path: m}\ndata: {train: t.txt, eval: e.txt}\npeft: {method: ia3}\n"
                               "train: {max_steps: 7, learning_rate: 0.5, eval_every: 3, seed: 5}\n");
  write_entry_config(base, entries[0], dir + "/out", dir + "/lora_run.yaml");
  auto config = RunConfig::load(dir + "/lora_run.yaml");
  EXPECT_EQ(config.peft.methods.at(0).name, "lora");
  EXPECT_DOUBLE_EQ(config.train.learning_rate, 0.01);
  EXPECT_EQ(config.train.max_steps, 7);
  EXPECT_EQ(config.train.seed, 5);
  EXPECT_EQ(config.train.eval_every, 0);
  EXPECT_EQ(config.output.dir, dir + "/out");
  EXPECT_TRUE(config.output.overwrite);
}

TEST(ComparisonEntries, AListHoldsFilesAndInlineItemsWithUniqueNames) {
  auto dir = test::temp_dir("comparison_list");
  test::write_text(dir + "/ia3.yaml", "peft: {method: ia3}\n");
  auto list = test::write_text(dir + "/methods.yaml",
                               "- ia3.yaml\n- {peft: {method: lora, r: 2}}\n- {name: lora, peft: {method: lora}}\n");
  auto entries = load_comparison_entries({list});
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].name, "ia3");
  EXPECT_EQ(entries[1].name, "lora");
  EXPECT_EQ(entries[2].name, "lora-2");
}

TEST(ComparisonEntries, BadEntriesSayWhatAndWhere) {
  auto dir = test::temp_dir("comparison_bad");
  auto no_peft = test::write_text(dir + "/a.yaml", "train: {learning_rate: 1}\n");
  EXPECT_NE(test::error_of([&] { load_comparison_entries({no_peft}); }).find("has no peft section"), std::string::npos);
  auto steps = test::write_text(dir + "/b.yaml", "- {name: x, peft: {method: lora}, train: {max_steps: 3}}\n");
  EXPECT_NE(test::error_of([&] {
              load_comparison_entries({steps});
            }).find("train.max_steps is the same for every method of a comparison"),
            std::string::npos);
  auto key = test::write_text(dir + "/c.yaml", "- {name: x, peft: {method: lora}, data: {train: y}}\n");
  EXPECT_NE(test::error_of([&] { load_comparison_entries({key}); }).find("unknown key 'data'"), std::string::npos);
  auto empty = test::write_text(dir + "/d.yaml", "[]\n");
  EXPECT_NE(test::error_of([&] { load_comparison_entries({empty}); }).find("the list of methods is empty"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { load_comparison_entries({dir + "/missing.yaml"}); }).find("method config not found"),
            std::string::npos);
}

}  // namespace
}  // namespace peft
