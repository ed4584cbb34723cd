// Checkpoint bookkeeping: which directories count as complete, what "latest" resolves to, rotation, leftovers of
// interrupted writes, the data fingerprint, and which configuration changes a resume accepts.
#include <gtest/gtest.h>

#include <filesystem>

#include "config/run_config.h"
#include "test_util.h"
#include "train/checkpoint.h"

namespace peft {
namespace {

namespace fs = std::filesystem;

void make_checkpoint(const std::string& dir, bool complete) {
  fs::create_directories(dir);
  test::write_text(dir + "/trainer_state.json", "{}");
  if (complete) test::write_text(dir + "/COMPLETE", "step\n");
}

TEST(Checkpoint, OnlyCompleteOnesAreListedAndLatestIsTheHighestStep) {
  std::string out = test::temp_dir("checkpoints");
  make_checkpoint(out + "/checkpoint-5", true);
  make_checkpoint(out + "/checkpoint-40", true);  // numerically, not alphabetically, after checkpoint-5
  make_checkpoint(out + "/checkpoint-100", false);
  make_checkpoint(out + "/checkpoint-60.partial-123", true);
  make_checkpoint(out + "/unrelated", true);

  auto complete = complete_checkpoints(out);
  ASSERT_EQ(complete.size(), 2u);
  EXPECT_EQ(complete[0].first, 5);
  EXPECT_EQ(complete[1].first, 40);
  EXPECT_EQ(resolve_checkpoint("latest", out), out + "/checkpoint-40");
  EXPECT_EQ(incomplete_checkpoints(out),
            (std::vector<std::string>{out + "/checkpoint-100", out + "/checkpoint-60.partial-123"}));
  EXPECT_NE(test::error_of([&] { resolve_checkpoint(out + "/checkpoint-100", out); }).find("incomplete"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { resolve_checkpoint("latest", out + "/nothing"); }).find("no complete checkpoint"),
            std::string::npos);
}

TEST(Checkpoint, PruningKeepsTheNewestAndRemovesLeftovers) {
  std::string out = test::temp_dir("prune");
  for (int step : {10, 20, 30, 40}) make_checkpoint(out + "/checkpoint-" + std::to_string(step), true);
  make_checkpoint(out + "/checkpoint-50", false);
  make_checkpoint(out + "/checkpoint-60.old-7", true);
  prune_checkpoints(out, 2);
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(out)) left.push_back(entry.path().filename());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"checkpoint-30", "checkpoint-40"}));
  prune_checkpoints(out, 0);  // 0 keeps all
  EXPECT_EQ(complete_checkpoints(out).size(), 2u);
  remove_checkpoints(out);
  EXPECT_TRUE(fs::is_empty(out));
}

TEST(Checkpoint, FingerprintFollowsTokensLabelsAndOrder) {
  std::vector<Example> a = {{{1, 2, 3}, {-100, 2, 3}}, {{4, 5}, {4, 5}}};
  auto b = a;
  EXPECT_EQ(fingerprint_examples(a), fingerprint_examples(b));
  b[1].labels[0] = -100;
  EXPECT_NE(fingerprint_examples(a), fingerprint_examples(b));
  auto c = a;
  std::swap(c[0], c[1]);
  EXPECT_NE(fingerprint_examples(a), fingerprint_examples(c));
  EXPECT_EQ(fingerprint_examples(a).size(), 16u);
}

TEST(Checkpoint, ResumeAcceptsBookkeepingChangesAndRefusesOthers) {
  std::string dir = test::temp_dir("resumable");
  std::string base =
      "model: {path: m, device: cpu}\ndata: {train: a.jsonl}\npeft: {method: lora, r: 4}\n"
      "train: {max_steps: 10, learning_rate: 0.001, save_every: 5}\noutput: {dir: out}\n";
  std::string saved = test::write_text(dir + "/run_config.yaml",
                                       RunConfig::load(test::write_text(dir + "/a.yaml", base)).resolved_yaml);
  auto resolved = [&](const std::vector<std::string>& overrides) {
    return RunConfig::load(dir + "/a.yaml", overrides).resolved_yaml;
  };
  check_resumable_config(saved, resolved({}));
  check_resumable_config(
      saved, resolved({"train.max_steps=20", "train.save_every=2", "train.log_every=1", "train.threads=1",
                       "output.dir=elsewhere", "data.train=b.jsonl", "train.on_nonfinite=skip", "data.eval=e.jsonl"}));
  EXPECT_NE(test::error_of([&] {
              check_resumable_config(saved, resolved({"train.learning_rate=0.002"}));
            }).find("train.learning_rate was 0.001 in the checkpoint's run"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { check_resumable_config(saved, resolved({"peft.r=8"})); }).find("peft.r was 4"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { check_resumable_config(saved, resolved({"train.seed=1"})); }).find("train.seed"),
            std::string::npos);
  EXPECT_NE(
      test::error_of([&] { check_resumable_config(saved, resolved({"model.dtype=bfloat16"})); }).find("model.dtype"),
      std::string::npos);
}

}  // namespace
}  // namespace peft
