// What every model family is to the PEFT methods: a transformer whose linear layers are Projections (hook point
// 1), which calls the ModelHooks at their sites (hook points 2-4), and whose name table tells the loader and the
// exporter how its checkpoint is laid out. CausalLM (decoders) and SequenceClassifier (encoders) add their task's
// outputs on top.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "models/checkpointing.h"
#include "models/hooks.h"
#include "models/model.h"

namespace peft {

class Transformer : public Model {
 public:
  using Model::Model;

  // The input token embedding matrix (V, d) (prompt initialisation reads it).
  virtual torch::Tensor input_embeddings() = 0;

  // Positions the input prefix (prompt tuning) takes before the real tokens.
  int64_t virtual_tokens() const override { return hooks.input_prefix ? hooks.input_prefix->length() : 0; }
  // Positions an attention prefix takes: like HF's past_key_values, real tokens are numbered after them.
  int64_t prefix_positions() const override { return hooks.attention_prefix ? hooks.attention_prefix->length() : 0; }
  // Real tokens one sequence may hold: max_position_embeddings less the virtual tokens and prefix positions.
  int64_t max_sequence_length() const override {
    return config_.max_position_embeddings - virtual_tokens() - prefix_positions();
  }

  // PEFT's default target_modules for the family (models/registry.h).
  std::vector<std::string> default_targets(DefaultTargets which) const override;

  // The family's name table, for the loader and the exporter: every checkpoint tensor in module order (and, in
  // Model, stored_transposed(): which of them are stored [in, out]); a prefix some checkpoints leave out
  // of every name; checkpoint tensors that are known not to be parameters; parameters a checkpoint may lack,
  // which then keep the initialisation the model gave them (a task head the base model never had).
  std::vector<std::string> tensor_names() const;
  virtual std::string optional_name_prefix() const { return ""; }
  virtual bool expected_unused(const std::string& tensor_name) const { return false; }
  virtual bool may_be_absent(const std::string& tensor_name) const { return false; }

  // Where block i lives ("model.layers.3", "transformer.h.3") and its norms' parameters relative to it (what
  // Houlsby adapters' train_norms unfreezes): the places methods that work per block attach to.
  virtual std::string block_path(int64_t index) const = 0;
  virtual std::vector<std::string> block_norms() const = 0;

  // Activation checkpointing of every block while training (train.gradient_checkpointing): `trainable` are the
  // tensors the optimiser updates, which the recomputed blocks are differentiated for. Empty turns it off.
  void set_gradient_checkpointing(std::vector<torch::Tensor> trainable) { checkpointed_ = std::move(trainable); }

  ModelHooks hooks;

 protected:
  // Hook point 3's plumbing, the same for every family: the input prefix's virtual tokens (B, l, d) before the
  // embedded inputs x (B, T, d), and the attention mask (and token types, when given) extended for them.
  struct PrefixedInputs {
    torch::Tensor x, attention_mask, token_type_ids;
    int64_t virtual_tokens = 0;  // l; 0 without an input prefix
  };
  PrefixedInputs prepend_input_prefix(const torch::Tensor& x, const torch::Tensor& attention_mask,
                                      const torch::Tensor& token_type_ids = {});
  // Final hidden states without the virtual tokens' positions.
  static torch::Tensor drop_virtual_tokens(const torch::Tensor& x, int64_t virtual_tokens) {
    return virtual_tokens > 0 ? x.narrow(1, virtual_tokens, x.size(1) - virtual_tokens) : x;
  }
  // One line when `length` positions (virtual tokens included) after `prefix_length` attention-prefix positions
  // exceed max_position_embeddings (`limit_key`: the family's name for it in config.json).
  void check_sequence_length(int64_t length, int64_t virtual_tokens, int64_t prefix_length,
                             const char* limit_key = "max_position_embeddings") const;

  // A family's block loop runs each block through here; `block` owns its captures (it may run again in backward).
  torch::Tensor run_block(const torch::Tensor& x, BlockFunction block) {
    if (checkpointed_.empty() || !is_training() || !torch::GradMode::is_enabled()) return block(x);
    return checkpointed(std::move(block), x, checkpointed_);
  }

 private:
  std::vector<torch::Tensor> checkpointed_;
};

}  // namespace peft
