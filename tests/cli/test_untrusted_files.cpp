// Loading never executes anything: pickled PyTorch files (.bin), whose loading can run arbitrary code, are refused
// with a line saying how to convert them to safetensors, for adapters and for models alike.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "cli_testing.h"

namespace peft {
namespace {

namespace fs = std::filesystem;

using test::expect_one_line_error;
using test::tool;

// A real one-step LoRA adapter in work/adapter, for the tests to tamper with.
bool train_small_adapter(const std::string& work) {
  std::string config = test::write_text(
      work + "/run.yaml", "model: {path: " + test::model_dir() +
                              ", device: cpu}\ndata: {train: " + test::data("eval.txt") + ", max_length: 32}\n" +
                              "peft: {method: lora, r: 2, target_modules: [q_proj]}\n"
                              "train: {max_steps: 1, batch_size: 2, threads: 1}\noutput: {dir: " +
                              work + "/adapter}\n");
  return test::run_command(tool("peft-train") + " --config " + config).exit_code == 0;
}

test::CommandResult evaluate_adapter(const std::string& work) {
  return test::run_command(tool("peft-eval") + " --model " + test::model_dir() + " --adapter " + work +
                           "/adapter --data " + test::data("eval.txt") + " --max-length 32");
}

TEST(UntrustedFiles, PickledAdapterIsRefusedWithAConversionHint) {
  std::string work = test::temp_dir("pickle");
  ASSERT_TRUE(train_small_adapter(work)) << "peft-train failed";
  // What an older HF PEFT save_pretrained wrote: the weights pickled (the bytes are never looked at).
  fs::remove(work + "/adapter/adapter_model.safetensors");
  test::write_text(work + "/adapter/adapter_model.bin", "\x80\x02}q\x00.");

  auto refused = evaluate_adapter(work);
  expect_one_line_error(refused, "holds adapter_model.bin (pickled PyTorch weights");
  EXPECT_NE(refused.output.find("save_file(torch.load('adapter_model.bin', weights_only=True)"), std::string::npos)
      << refused.output;
}

TEST(UntrustedFiles, AdapterConfigAskingForAnAbsurdSizeIsRefused) {
  std::string work = test::temp_dir("absurd-r");
  ASSERT_TRUE(train_small_adapter(work)) << "peft-train failed";
  // r = 10^12: LoRA's A alone would need 256 TB, which the allocator refuses before the file is looked at.
  std::string path = work + "/adapter/adapter_config.json";
  auto adapter_config = nlohmann::json::parse(test::read_text(path));
  adapter_config["r"] = int64_t{1000000000000};
  test::write_text(path, adapter_config.dump());
  auto refused = evaluate_adapter(work);
  expect_one_line_error(refused, path + ": the adapter it describes cannot be built on");
}

TEST(UntrustedFiles, PickledModelIsRefusedWithAConversionHint) {
  std::string work = test::temp_dir("pickle-model");
  fs::copy(test::model_dir(), work + "/model", fs::copy_options::recursive);
  fs::remove(work + "/model/model.safetensors");
  test::write_text(work + "/model/pytorch_model.bin", "\x80\x02}q\x00.");
  auto refused = test::run_command(tool("peft-eval") + " --model " + work + "/model --data " + test::data("eval.txt") +
                                   " --max-length 32");
  expect_one_line_error(refused, "holds pytorch_model.bin (pickled PyTorch weights");
  EXPECT_NE(refused.output.find("safe_serialization=True"), std::string::npos) << refused.output;
}

}  // namespace
}  // namespace peft
