// peft-compare on the real stories260K and the embedded E2E slice, a few steps per method: every column measured,
// each method's defining facts visible in its row (LoRA's ΔW rank, BitFit touching no matrix, prompt tuning's extra
// positions, full fine-tuning changing everything), in-context rows with their cost, a failing method reported in its
// row while the others complete, and the four output files.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_testing.h"

namespace peft {
namespace {

using test::expect_one_line_error;
using test::tool;

std::string base_config(const std::string& work) {
  std::string e2e = test::source_dir() + "/third_party/e2e_nlg_sample/";
  return test::write_text(work + "/base.yaml", "model: {path: " + test::model_dir() + "}\n" + "data: {train: " + e2e +
                                                   "dev.csv, eval: " + e2e +
                                                   "test.csv, max_length: 96, max_eval_examples: 8}\n"
                                                   "peft: {method: lora}\n"
                                                   "train: {max_steps: 4, batch_size: 4, seed: 3, threads: 1}\n"
                                                   "output: {dir: unused}\n");
}

const nlohmann::json& row(const nlohmann::json& table, const std::string& name) {
  for (const auto& r : table["rows"]) {
    if (r["name"] == name) return r;
  }
  throw std::runtime_error("no row " + name);
}

TEST(CompareEndToEnd, MeasuresEveryColumnAndReportsAFailingMethodInItsRow) {
  std::string work = test::temp_dir("compare");
  auto methods = test::write_text(work + "/methods.yaml",
                                  "- {name: lora, peft: {method: lora, r: 4, target_modules: [q_proj, v_proj]}}\n"
                                  "- {name: ia3, peft: {method: ia3}, train: {learning_rate: 0.01}}\n"
                                  "- {name: bitfit, peft: {method: bitfit, biases: subset, target_modules: [q_proj]}}\n"
                                  "- {name: prompt, peft: {method: prompt_tuning, num_virtual_tokens: 4}}\n"
                                  "- {name: broken, peft: {method: lora, target_modules: [no_such_layer]}}\n");
  auto result = test::run_command(tool("peft-compare") + " --config " + base_config(work) + " --methods " + methods +
                                  " --out " + work + "/out --icl-shots 0,2,64 --full-learning-rate 1e-3");
  EXPECT_EQ(result.exit_code, 1) << result.output;  // one method failed; the table is complete
  EXPECT_NE(result.output.find("broken failed: "), std::string::npos) << result.output;
  auto table = nlohmann::json::parse(test::read_text(work + "/out/comparison.json"));
  ASSERT_EQ(table["rows"].size(), 9u) << table.dump(2);
  EXPECT_EQ(table["metric"], "held-out loss");

  const auto& broken = row(table, "broken");
  EXPECT_EQ(broken["status"], "failed");
  EXPECT_NE(broken["error"].get<std::string>().find("no_such_layer"), std::string::npos) << broken;

  const auto& lora = row(table, "lora");
  ASSERT_EQ(lora["status"], "ok") << lora;
  EXPECT_EQ(lora["trainable_parameters"], 5 * 4 * (64 + 64) + 5 * 4 * (64 + 32));
  // Merged: whole q and v matrices (but for an element whose change rounds away in float32).
  EXPECT_LE(lora["changed_parameters"].get<int64_t>(), 5 * (64 * 64 + 32 * 64));
  EXPECT_GE(lora["changed_parameters"].get<int64_t>(), 5 * (64 * 64 + 32 * 64) - 10);
  EXPECT_EQ(lora["changed_matrices"], 10);
  EXPECT_GE(lora["delta_rank_max"].get<int64_t>(), 1);
  EXPECT_LE(lora["delta_rank_max"].get<int64_t>(), 4);
  auto adapter = work + "/out/lora/adapter_model.safetensors";
  EXPECT_EQ(lora["adapter_bytes"].get<int64_t>(),
            int64_t(std::filesystem::file_size(adapter) +
                    std::filesystem::file_size(work + "/out/lora/adapter_config.json")));
  EXPECT_EQ(lora["memory_measure"], "process peak RSS");
  EXPECT_GT(lora["peak_memory_bytes"].get<double>(), lora["weights_bytes"].get<double>());
  EXPECT_GT(lora["weights_bytes"].get<double>(), 0.0);
  EXPECT_GT(lora["tokens_per_second"].get<double>(), 0.0);
  EXPECT_GT(lora["backward_forward_ratio"].get<double>(), 0.0);
  EXPECT_GT(lora["latency_merged"].get<double>(), 0.0);
  EXPECT_GT(lora["training_flops"].get<double>(), 0.0);

  const auto& bitfit = row(table, "bitfit");
  EXPECT_EQ(bitfit["changed_parameters"], 5 * 64);  // q_proj's biases, and no matrix
  EXPECT_EQ(bitfit["changed_matrices"], 0);

  const auto& prompt = row(table, "prompt");
  EXPECT_EQ(prompt["extra_positions"], 4);
  EXPECT_FALSE(prompt.contains("changed_parameters"));  // it cannot merge; the base is unchanged
  EXPECT_GT(prompt["inference_flops"].get<double>(), lora["inference_flops"].get<double>());

  const auto& full = row(table, "full");  // added as the reference row
  EXPECT_EQ(full["kind"], "full");
  EXPECT_EQ(full["trainable_parameters"], full["base_parameters"]);
  EXPECT_GT(full["changed_parameters"].get<double>(), 0.9 * full["base_parameters"].get<double>());
  EXPECT_GT(full["delta_rank_max"].get<int64_t>(), 4);
  EXPECT_GT(full["adapter_bytes"].get<int64_t>(), 10 * lora["adapter_bytes"].get<int64_t>());

  const auto& zero = row(table, "ICL K=0");
  const auto& two = row(table, "ICL K=2");
  ASSERT_EQ(two["status"], "ok") << two;
  EXPECT_EQ(zero["training_flops"], 0.0);
  EXPECT_GT(two["demonstration_tokens"].get<int64_t>(), 0);
  EXPECT_GT(two["inference_flops"].get<double>(), 1.5 * zero["inference_flops"].get<double>());
  const auto& many = row(table, "ICL K=64");
  EXPECT_EQ(many["status"], "skipped");
  EXPECT_NE(many["error"].get<std::string>().find("positions of the context"), std::string::npos);

  auto markdown = test::read_text(work + "/out/comparison.md");
  EXPECT_NE(markdown.find("| broken | failed: "), std::string::npos) << markdown;
  EXPECT_NE(markdown.find("| lora | "), std::string::npos);
  auto csv = test::read_text(work + "/out/comparison.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 10);
  auto svg = test::read_text(work + "/out/comparison.svg");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("lora"), std::string::npos);
}

TEST(CompareEndToEnd, BadInputIsOneLine) {
  std::string work = test::temp_dir("compare-bad");
  auto base = base_config(work);
  auto methods = test::write_text(work + "/m.yaml", "- {name: lora, peft: {method: lora}}\n");
  expect_one_line_error(
      test::run_command(tool("peft-compare") + " --config " + base + " --methods " + methods + " --metric accuracy"),
      "--metric accuracy does not fit data.task language_modeling");
  expect_one_line_error(
      test::run_command(tool("peft-compare") + " --config " + base + " --methods " + work + "/none.yaml"),
      "method config not found");
  expect_one_line_error(
      test::run_command(tool("peft-compare") + " --config " + base + " --methods " + methods + " output.dir=elsewhere"),
      "peft-compare sets output.dir per method (in the methods list) or itself");
  auto no_eval = test::write_text(work + "/no_eval.yaml", "model: {path: " + test::model_dir() +
                                                              "}\ndata: {train: x.txt}\npeft: {method: lora}\n"
                                                              "output: {dir: o}\n");
  expect_one_line_error(test::run_command(tool("peft-compare") + " --config " + no_eval + " --methods " + methods),
                        "peft-compare needs held-out data: set data.eval");
}

}  // namespace
}  // namespace peft
