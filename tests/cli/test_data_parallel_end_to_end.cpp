// Data-parallel training on the real peft-train: two processes on this machine, meeting over loopback as torchrun
// would start them (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and summing gradients with Gloo, train the same
// adapter as one process with the same global batch: the same loss and gradient norm at every step and the same
// adapter tensors, to float tolerance. Rank 0 alone logs, evaluates and saves; bad launch variables are one line.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_testing.h"
#include "io/safetensors.h"

namespace peft {
namespace {

namespace fs = std::filesystem;

// Eleven examples of different lengths: batches of 4 split 2 + 2 between the ranks with unequal token counts, and
// each epoch's last batch of 3 splits 2 + 1. Accumulation over 2 batches crosses the epoch boundaries.
std::string write_config(const std::string& work) {
  std::string text = test::read_text(test::data("eval.txt"));
  std::string lines;
  for (int i = 0; i < 11; ++i) lines += nlohmann::json{{"text", text.substr(i * 500, 80 + 37 * i)}}.dump() + "\n";
  std::string train = test::write_text(work + "/train.jsonl", lines);
  return test::write_text(
      work + "/run.yaml",
      "model: {path: " + test::model_dir() + ", device: cpu}\n" + "data: {train: " + train +
          ", eval: " + test::data("eval.txt") +
          ", max_length: 96, max_eval_examples: 4}\n"
          "peft: {method: lora, r: 4, lora_alpha: 8, lora_dropout: 0.0, target_modules: [q_proj, v_proj, down_proj]}\n"
          "train: {max_steps: 9, batch_size: 4, gradient_accumulation_steps: 2, learning_rate: 0.01, "
          "lr_scheduler: linear, warmup_steps: 2, weight_decay: 0.01, log_every: 1000, threads: 1}\n"
          "output: {dir: " +
          work + "/unused}\n");
}

void expect_close(double a, double b, const std::string& what) {
  EXPECT_LE(std::abs(a - b), 2e-5 * std::max(1.0, std::abs(a))) << what << ": " << a << " vs " << b;
}

TEST(DataParallel, TwoProcessesTrainWhatOneProcessTrainsOnTheSameGlobalBatch) {
  std::string work = test::temp_dir("ddp");
  std::string config = write_config(work);
  std::string single = work + "/single", parallel = work + "/parallel";
  auto one = test::run_command(test::tool("peft-train") + " --config " + config + " output.dir=" + single);
  ASSERT_EQ(one.exit_code, 0) << one.output;

  std::string launch = "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(test::free_tcp_port()) + " WORLD_SIZE=2 ";
  std::string train = test::tool("peft-train") + " --config " + config + " output.dir=" + parallel;
  auto two = test::run_command("bash -c '" + launch + "RANK=0 LOCAL_RANK=0 " + train + " > " + work +
                               "/rank0.log 2>&1 & first=$!; " + launch + "RANK=1 LOCAL_RANK=1 " + train + " > " + work +
                               "/rank1.log 2>&1; second=$?; wait $first; echo exit=$?,$second'");
  std::string rank0 = test::read_text(work + "/rank0.log"), rank1 = test::read_text(work + "/rank1.log");
  ASSERT_NE(two.output.find("exit=0,0"), std::string::npos) << two.output << rank0 << rank1;

  // Rank 0 reports (the data-parallel line, evaluation, the adapter); rank 1 stays quiet and writes nothing.
  EXPECT_NE(rank0.find("data parallel over 2 processes (gloo)"), std::string::npos) << rank0;
  EXPECT_NE(rank0.find("effective batch 8 examples per optimiser step"), std::string::npos) << rank0;
  EXPECT_NE(rank0.find("held-out loss:"), std::string::npos) << rank0;
  EXPECT_NE(rank0.find("adapter written to"), std::string::npos) << rank0;
  EXPECT_EQ(rank1.find("written to"), std::string::npos) << rank1;
  EXPECT_EQ(rank1.find("step "), std::string::npos) << rank1;

  auto expected = test::train_log_steps(single), got = test::train_log_steps(parallel);
  ASSERT_EQ(expected.size(), 9u);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    std::string step = "step " + std::to_string(i + 1);
    expect_close(got[i]["loss"], expected[i]["loss"], step + " loss");
    expect_close(got[i]["grad_norm"], expected[i]["grad_norm"], step + " grad_norm");
    EXPECT_EQ(got[i]["lr"], expected[i]["lr"]) << step;
    EXPECT_EQ(got[i]["tokens"], expected[i]["tokens"]) << step;  // counted over both shards
    EXPECT_GT(got[i]["peak_memory_bytes"].get<double>(), 0.0) << step;
  }
  std::string log = test::read_text(parallel + "/train_log.jsonl");
  EXPECT_NE(log.find(R"("effective_batch_size":8)"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("world_size":2)"), std::string::npos) << log;
  EXPECT_NE(log.find("eval_loss"), std::string::npos) << log;

  auto a = safetensors::File::open(single + "/adapter_model.safetensors");
  auto b = safetensors::File::open(parallel + "/adapter_model.safetensors");
  ASSERT_EQ(a->names(), b->names());
  EXPECT_FALSE(a->names().empty());
  for (const auto& name : a->names()) {
    auto x = a->tensor(name), y = b->tensor(name);
    EXPECT_TRUE(torch::allclose(x, y, 1e-4, 1e-6)) << name << ": max difference " << (x - y).abs().max().item<double>();
  }
  // The adapter moved: the comparison is not between two untrained adapters.
  EXPECT_GT(expected.front()["loss"].get<double>() - expected.back()["loss"].get<double>(), 0.05);
}

TEST(DataParallel, BadLaunchVariablesAreOneLine) {
  std::string work = test::temp_dir("ddp_bad");
  std::string config = write_config(work);
  std::string train = test::tool("peft-train") + " --config " + config + " output.dir=" + work + "/out";
  test::expect_one_line_error(test::run_command("env RANK=0 WORLD_SIZE=2 " + train + " 2>&1"),
                              "MASTER_ADDR is missing");
  test::expect_one_line_error(test::run_command("env RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 " + train + " 2>&1"),
                              "RANK=2 is not below WORLD_SIZE=2");
  test::expect_one_line_error(test::run_command("env RANK=0 WORLD_SIZE=two " + train + " 2>&1"),
                              "WORLD_SIZE='two' is not an integer");
  test::expect_one_line_error(
      test::run_command("env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=70000 " + train + " 2>&1"),
      "MASTER_PORT='70000' is not an integer in 1..65535");
  test::expect_one_line_error(test::run_command("env WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 " + train + " 2>&1"),
                              "RANK is missing");
  EXPECT_FALSE(fs::exists(work + "/out/adapter_model.safetensors"));
}

}  // namespace
}  // namespace peft
