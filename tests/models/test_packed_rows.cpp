// Packed rows on the real families: each example's logits in a packed row are its logits alone (block-diagonal
// causal attention, positions restarting per example: rotary tables for Llama, learned positions for GPT-2; a
// sliding window of 4 cuts inside the 5-token example, as it does alone),
// so the training loss of a packed batch equals the unpacked batch's, with an adapter attached too.
#include <gtest/gtest.h>

#include "data/batch.h"
#include "data/packing.h"
#include "models/loader.h"
#include "peft/method.h"
#include "peft/method_testing.h"
#include "train/loss.h"

namespace peft {
namespace {

std::vector<Example> three_examples() {
  std::vector<std::vector<int64_t>> ids = {{1, 5, 9, 3, 7}, {1, 8, 6}, {2, 11, 4, 10}};
  std::vector<Example> examples;
  for (const auto& row : ids) examples.push_back(Example{row, row});
  return examples;
}

class PackedRows : public testing::TestWithParam<std::string> {};

TEST_P(PackedRows, EachExampleComputesWhatItComputesAlone) {
  torch::manual_seed(3);
  auto model = load_model(test::fixture(GetParam()), {"float32", "cpu"});
  auto method = test::method_from_yaml("{method: lora, r: 4, init_lora_weights: false, target_modules: all-linear}");
  method->attach(*model);
  model->eval();
  torch::NoGradGuard no_grad;
  auto examples = three_examples();
  auto packed = pack_examples(examples, 12);
  ASSERT_EQ(packed.rows.size(), 1u);
  Batch row = collate({&packed.rows[0]}, 0);
  auto packed_logits = model->logits(row.input_ids, row.attention_mask)[0];
  int64_t offset = 0;
  for (size_t index : packed.members[0]) {
    Batch alone = collate({&examples[index]}, 0);
    auto logits = model->logits(alone.input_ids, alone.attention_mask)[0];
    auto in_row = packed_logits.narrow(0, offset, logits.size(0));
    EXPECT_TRUE(torch::allclose(in_row, logits, 1e-5, 1e-5))
        << "example " << index << ": max difference " << (in_row - logits).abs().max().item<double>();
    offset += logits.size(0);
  }

  std::vector<const Example*> all = {&examples[0], &examples[1], &examples[2]};
  double unpacked_loss = training_loss(*model, collate(all, 0)).item<double>();
  double packed_loss = training_loss(*model, row).item<double>();
  EXPECT_NEAR(packed_loss, unpacked_loss, 1e-6 * unpacked_loss);
  EXPECT_EQ(row.scored_tokens, collate(all, 0).scored_tokens);
}

INSTANTIATE_TEST_SUITE_P(Families, PackedRows,
                         testing::Values("llama/llama_gqa_tied", "llama/mistral_head_dim", "llama/qwen2_bias",
                                         "gpt2/gpt2_tiny", "families/mistral_sliding", "families/qwen3",
                                         "families/gemma2", "families/gemma3", "families/phi3", "families/llama3_rope"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param.substr(info.param.find('/') + 1);
                           return name;
                         });

}  // namespace
}  // namespace peft
