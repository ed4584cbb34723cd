// Checkpoints and exact resume on the real peft-train: a run killed with SIGKILL between checkpoints, or stopped by
// SIGINT, and resumed, gives bit-identical losses and a bit-identical adapter to an uninterrupted run; a second
// SIGINT stops at once and the last checkpoint still resumes; incomplete checkpoints are ignored; a failing write
// (a file-size limit makes write(2) fail with EFBIG, as a full disk fails it with ENOSPC) stops the run with one
// error line and leaves earlier checkpoints intact; rotation keeps the newest K.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_testing.h"

namespace peft {
namespace {

namespace fs = std::filesystem;

using test::expect_one_line_error;
using test::tool;

// Ten examples: an epoch is 3 batches of 4 (the last short) and, with 2-batch accumulation, 2 optimiser steps, so
// the runs below cross many epoch boundaries and a partial accumulation at each epoch's end. LoRA dropout draws
// from LibTorch's generator, whose state a checkpoint must restore.
std::string write_config(const std::string& work, const std::string& train_extra = "") {
  std::string text = test::read_text(test::data("eval.txt"));
  std::string lines;
  for (int i = 0; i < 10; ++i) lines += nlohmann::json{{"text", text.substr(i * 700, 600)}}.dump() + "\n";
  std::string train = test::write_text(work + "/train.jsonl", lines);
  return test::write_text(
      work + "/run.yaml",
      "model: {path: " + test::model_dir() + ", device: cpu}\n" + "data: {train: " + train +
          ", max_length: 128}\n"
          "peft: {method: lora, r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: [q_proj, v_proj, down_proj]}\n"
          "train: {max_steps: 120, batch_size: 4, gradient_accumulation_steps: 2, learning_rate: 0.003, "
          "lr_scheduler: cosine, warmup_steps: 5, weight_decay: 0.01, save_every: 10, log_every: 1000, threads: 1" +
          train_extra + "}\n" + "output: {dir: " + work + "/unused}\n");
}

std::string train_command(const std::string& config, const std::string& out, const std::string& extra = "") {
  return tool("peft-train") + " --config " + config + " output.dir=" + out + " " + extra;
}

// Every optimiser step's record of train_log.jsonl, without its timings.
std::vector<std::string> step_records(const std::string& out) {
  std::vector<std::string> records;
  for (auto record : test::train_log_steps(out)) {
    record.erase("tokens_per_second");
    record.erase("elapsed_seconds");
    record.erase("peak_memory_bytes");
    records.push_back(record.dump());
  }
  return records;
}

struct Reference {
  std::string work, config, out;
};

// The uninterrupted run, trained once for all tests of this binary.
const Reference& reference() {
  static Reference made = [] {
    Reference r;
    r.work = test::temp_dir("resume");
    r.config = write_config(r.work);
    r.out = r.work + "/uninterrupted";
    auto run = test::run_command(train_command(r.config, r.out));
    EXPECT_EQ(run.exit_code, 0) << run.output;
    return r;
  }();
  return made;
}

void expect_same_as_reference(const std::string& out) {
  const auto& r = reference();
  auto expected = step_records(r.out);
  ASSERT_EQ(expected.size(), 120u);
  EXPECT_EQ(step_records(out), expected);
  EXPECT_EQ(test::read_text(out + "/adapter_model.safetensors"), test::read_text(r.out + "/adapter_model.safetensors"));
}

// Starts training in the background (job control: its own process group, where SIGINT is not ignored), waits for
// `checkpoint` to be complete, then sends `signals` (e.g. "KILL", "INT", "INT INT"); prints "exit=<status>".
test::CommandResult interrupt_run(const std::string& command, const std::string& log, const std::string& checkpoint,
                                  const std::string& signals) {
  std::string send;
  std::istringstream names(signals);
  for (std::string name; names >> name;) send += "kill -" + name + " $pid; ";
  return test::run_command("bash -c 'set -m; " + command + " > " + log +
                           " 2>&1 & pid=$!; for i in $(seq 3000); do [ -f " + checkpoint +
                           "/COMPLETE ] && break; sleep 0.01; done; " + send + "wait $pid; echo exit=$?'");
}

TEST(Resume, KilledBetweenCheckpointsResumesBitIdentical) {
  const auto& r = reference();
  std::string out = r.work + "/killed";
  auto killed = interrupt_run(train_command(r.config, out), r.work + "/killed.log", out + "/checkpoint-20", "KILL");
  ASSERT_NE(killed.output.find("exit=137"), std::string::npos)
      << killed.output << test::read_text(r.work + "/killed.log");
  ASSERT_FALSE(fs::exists(out + "/adapter_model.safetensors")) << "the run finished before it was killed";

  auto resumed = test::run_command(train_command(r.config, out, "--resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from " + out + "/checkpoint-"), std::string::npos) << resumed.output;
  expect_same_as_reference(out);
}

TEST(Resume, SigintFinishesTheStepSavesAndResumesBitIdentical) {
  const auto& r = reference();
  std::string out = r.work + "/sigint";
  std::string log = r.work + "/sigint.log";
  auto stopped = interrupt_run(train_command(r.config, out), log, out + "/checkpoint-10", "INT");
  std::string output = test::read_text(log);
  ASSERT_NE(stopped.output.find("exit=130"), std::string::npos) << stopped.output << output;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(output, match, std::regex("stopped at step ([0-9]+)/120: checkpoint (\\S+)")))
      << output;
  EXPECT_EQ(match[2].str(), out + "/checkpoint-" + match[1].str());
  EXPECT_TRUE(fs::exists(match[2].str() + "/COMPLETE"));
  EXPECT_NE(output.find("resume with: peft-train --config " + r.config + " 'output.dir=" + out + "' --resume latest"),
            std::string::npos)
      << output;
  EXPECT_FALSE(fs::exists(out + "/adapter_model.safetensors"));
  // The checkpoint holds a loadable adapter.
  auto evaluated = test::run_command(tool("peft-eval") + " --model " + test::model_dir() + " --adapter " +
                                     match[2].str() + " --data " + r.work + "/train.jsonl --max-length 64");
  EXPECT_EQ(evaluated.exit_code, 0) << evaluated.output;

  auto resumed = test::run_command(train_command(r.config, out, "--resume latest"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_same_as_reference(out);
}

TEST(Resume, SecondSigintStopsAtOnceAndTheLastCheckpointResumes) {
  // Slow steps (8 x 256 tokens, ~0.4 s), so that the second SIGINT arrives while the first one's step is still running
  // (two signals sent back to back would merge into one pending signal).
  std::string work = test::temp_dir("twice");
  std::string text = test::read_text(test::data("train.txt"));
  std::string lines;
  for (int i = 0; i < 32; ++i) lines += nlohmann::json{{"text", text.substr(i * 3000, 2500)}}.dump() + "\n";
  std::string config = test::write_text(
      work + "/run.yaml", "model: {path: " + test::model_dir() +
                              ", device: cpu}\ndata: {train: " + test::write_text(work + "/train.jsonl", lines) +
                              ", max_length: 256}\npeft: {method: lora, r: 4, target_modules: [q_proj, v_proj]}\n"
                              "train: {max_steps: 6, batch_size: 8, save_every: 2, threads: 1}\noutput: {dir: " +
                              work + "/out}\n");
  std::string log = work + "/twice.log";
  auto stopped = test::run_command("bash -c 'set -m; " + tool("peft-train") + " --config " + config + " > " + log +
                                   " 2>&1 & pid=$!; " + "for i in $(seq 6000); do [ -f " + work +
                                   "/out/checkpoint-2/COMPLETE ] && break; sleep 0.01; done; " +
                                   "kill -INT $pid; for i in $(seq 6000); do grep -q \"^interrupted:\" " + log +
                                   " && break; sleep 0.005; done; " + "kill -INT $pid; wait $pid; echo exit=$?'");
  std::string output = test::read_text(log);
  ASSERT_NE(stopped.output.find("exit=130"), std::string::npos) << stopped.output << output;
  EXPECT_NE(output.find("stopped at once"), std::string::npos) << output;
  EXPECT_EQ(output.find("resume with:"), std::string::npos) << output;

  auto resumed = test::run_command(tool("peft-train") + " --config " + config + " --resume latest");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from " + work + "/out/checkpoint-"), std::string::npos) << resumed.output;
  EXPECT_TRUE(fs::exists(work + "/out/adapter_model.safetensors"));
}

TEST(Resume, IncompleteCheckpointsAreIgnoredAndRefused) {
  const auto& r = reference();
  // The uninterrupted run's checkpoints, plus a newer one whose writing "was interrupted" (no COMPLETE marker).
  std::string out = r.work + "/incomplete";
  fs::copy(r.out, out, fs::copy_options::recursive);
  fs::remove(out + "/adapter_model.safetensors");
  fs::copy(out + "/checkpoint-50", out + "/checkpoint-999", fs::copy_options::recursive);
  fs::remove(out + "/checkpoint-999/COMPLETE");
  for (int step = 60; step <= 120; step += 10) fs::remove_all(out + "/checkpoint-" + std::to_string(step));

  auto refused = test::run_command(train_command(r.config, out, "--resume " + out + "/checkpoint-999"));
  expect_one_line_error(refused, "the checkpoint is incomplete");

  auto resumed = test::run_command(train_command(r.config, out, "--resume latest"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("ignoring " + out + "/checkpoint-999"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from " + out + "/checkpoint-50 at step 50/120"), std::string::npos)
      << resumed.output;
  expect_same_as_reference(out);
  EXPECT_FALSE(fs::exists(out + "/checkpoint-999")) << "a leftover is removed once newer checkpoints exist";
}

TEST(Resume, FailedCheckpointWriteStopsWithOneLineAndKeepsEarlierCheckpoints) {
  const auto& r = reference();
  std::string out = r.work + "/full";
  fs::create_directories(out);
  fs::copy(r.out + "/checkpoint-10", out + "/checkpoint-10", fs::copy_options::recursive);
  fs::copy(r.out + "/checkpoint-20", out + "/checkpoint-20", fs::copy_options::recursive);
  std::string before = test::read_text(out + "/checkpoint-20/trainable.safetensors");
  // Files may not grow beyond 8 KiB: the checkpoint's tensors do not fit. SIGXFSZ is ignored, so write(2) fails.
  auto failed = test::run_command("bash -c \"trap '' XFSZ; ulimit -f 8; " +
                                  train_command(r.config, out, "--resume " + out + "/checkpoint-10") + "\"");
  expect_one_line_error(failed, "cannot write checkpoint " + out + "/checkpoint-20");
  EXPECT_NE(failed.output.find("File too large"), std::string::npos) << failed.output;
  EXPECT_NE(failed.output.find("earlier checkpoints are intact"), std::string::npos) << failed.output;
  // Both earlier checkpoints are complete and unchanged; nothing half-written is left behind.
  EXPECT_TRUE(fs::exists(out + "/checkpoint-10/COMPLETE"));
  EXPECT_TRUE(fs::exists(out + "/checkpoint-20/COMPLETE"));
  EXPECT_EQ(test::read_text(out + "/checkpoint-20/trainable.safetensors"), before);
  for (const auto& entry : fs::recursive_directory_iterator(out)) {
    std::string name = entry.path().filename().string();
    EXPECT_EQ(name.find(".partial-"), std::string::npos) << entry.path();
    EXPECT_EQ(name.find(".tmp."), std::string::npos) << entry.path();
  }
  // And the run continues from there once there is room.
  auto resumed = test::run_command(train_command(r.config, out, "--resume latest"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(test::read_text(out + "/adapter_model.safetensors"), test::read_text(r.out + "/adapter_model.safetensors"));
}

TEST(Resume, UnwritableOutputDirectoryStopsWithOneLine) {
  // A path under a regular file can never be created (permissions would not stop root, which CI may be).
  const auto& r = reference();
  std::string blocker = test::write_text(r.work + "/blocker", "a file, not a directory\n");
  auto failed = test::run_command(train_command(r.config, blocker + "/out", "train.max_steps=2"));
  expect_one_line_error(failed, "cannot create directory " + blocker + "/out");
}

TEST(Resume, KeepCheckpointsRotatesAndAFreshRunRefusesOrReplacesThem) {
  const auto& r = reference();
  std::string out = r.work + "/rotate";
  auto run =
      test::run_command(train_command(r.config, out, "train.max_steps=25 train.save_every=5 train.keep_checkpoints=2"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(out)) {
    if (entry.path().filename().string().rfind("checkpoint-", 0) == 0) names.push_back(entry.path().filename());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"checkpoint-20", "checkpoint-25"}));

  fs::remove(out + "/adapter_model.safetensors");
  auto refused = test::run_command(train_command(r.config, out, "train.max_steps=25"));
  expect_one_line_error(refused, "holds checkpoints of an earlier run");
  auto replaced =
      test::run_command(train_command(r.config, out, "train.max_steps=3 train.save_every=0 output.overwrite=true"));
  ASSERT_EQ(replaced.exit_code, 0) << replaced.output;
  EXPECT_FALSE(fs::exists(out + "/checkpoint-20"));
  EXPECT_FALSE(fs::exists(out + "/checkpoint-25"));
}

TEST(Resume, RefusesACheckpointOfAnotherConfigurationOrData) {
  const auto& r = reference();
  auto lr = test::run_command(
      train_command(r.config, r.work + "/other", "train.learning_rate=0.01 --resume " + r.out + "/checkpoint-10"));
  expect_one_line_error(lr, "cannot resume: train.learning_rate was 0.003");
  auto method =
      test::run_command(train_command(r.config, r.work + "/other", "peft.r=8 --resume " + r.out + "/checkpoint-10"));
  expect_one_line_error(method, "cannot resume: peft.r was 4");
  auto none = test::run_command(train_command(r.config, r.work + "/empty", "--resume latest"));
  expect_one_line_error(none, "no complete checkpoint in " + r.work + "/empty");
  auto missing = test::run_command(train_command(r.config, r.work + "/other", "--resume " + r.work + "/nowhere"));
  expect_one_line_error(missing, "checkpoint directory not found");
  auto swallowed = test::run_command(tool("peft-train") + " --config " + r.config + " --resume train.max_steps=5");
  expect_one_line_error(swallowed, "--resume took 'train.max_steps=5'");

  // The same settings on other data: the checkpoint's data fingerprint does not match.
  std::string other = test::write_text(r.work + "/other.jsonl", "{\"text\": \"a different story about a cat\"}\n");
  auto data = test::run_command(
      train_command(r.config, r.work + "/other", "data.train=" + other + " --resume " + r.out + "/checkpoint-10"));
  expect_one_line_error(data, "the training data (" + other + ", as tokenized) differs");
}

TEST(NonFinite, StopNamesTheStepAndSavesNothing) {
  std::string work = test::temp_dir("nonfinite");
  std::string config = write_config(work);
  // A huge learning rate: the first update makes LoRA's A and B enormous, the next loss overflows to NaN.
  auto stopped = test::run_command(
      train_command(config, work + "/stop", "train.learning_rate=1e30 train.warmup_steps=0 train.max_steps=5"));
  expect_one_line_error(stopped, "step 2: non-finite loss");
  EXPECT_NE(stopped.output.find("train.on_nonfinite: stop"), std::string::npos) << stopped.output;
  EXPECT_FALSE(fs::exists(work + "/stop/adapter_model.safetensors"));

  auto skipped = test::run_command(
      train_command(config, work + "/skip",
                    "train.learning_rate=1e30 train.warmup_steps=0 train.max_steps=10 train.on_nonfinite=skip "
                    "train.max_nonfinite_in_a_row=3"));
  expect_one_line_error(skipped, "3 non-finite steps in a row");
  std::string log = test::read_text(work + "/skip/train_log.jsonl");
  EXPECT_NE(log.find("\"skipped\":\"step 2: non-finite loss"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(work + "/skip/adapter_model.safetensors"));
}

TEST(NonFinite, AnAdapterHoldingNaNIsNeverSaved) {
  // A checkpoint whose first trainable value is NaN (valid safetensors otherwise), resumed with nothing left to
  // train: the final save refuses it.
  const auto& r = reference();
  std::string out = r.work + "/poisoned";
  fs::create_directories(out);
  fs::copy(r.out + "/checkpoint-10", out + "/checkpoint-10", fs::copy_options::recursive);
  std::string path = out + "/checkpoint-10/trainable.safetensors";
  std::string bytes = test::read_text(path);
  uint64_t header = 0;
  std::memcpy(&header, bytes.data(), 8);
  const uint32_t nan_bits = 0x7fc00000;
  std::memcpy(&bytes[8 + header], &nan_bits, 4);
  test::write_text(path, bytes);

  auto refused = test::run_command(train_command(r.config, out, "train.max_steps=10 --resume latest"));
  expect_one_line_error(refused, "refusing to save the adapter: parameter");
  EXPECT_NE(refused.output.find("holds NaN or Inf"), std::string::npos) << refused.output;
  EXPECT_FALSE(fs::exists(out + "/adapter_model.safetensors"));
}

}  // namespace
}  // namespace peft
