// What every model family is to the PEFT methods: a transformer whose linear layers are Projections (hook point
// 1), which calls the ModelHooks at their sites (hook points 2-4), and whose name table tells the loader and the
// exporter how its checkpoint is laid out. CausalLM (decoders) and SequenceClassifier (encoders) add their task's
// outputs on top.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "io/hf_config.h"
#include "models/hooks.h"
#include "models/projection.h"

namespace peft {

// The target_modules a method takes when the config names none: PEFT's per-family defaults.
enum class DefaultTargets { lora, ia3, ia3_feedforward, bitfit_subset };

class Transformer : public torch::nn::Module {
 public:
  explicit Transformer(ModelConfig config) : config_(std::move(config)) {}

  const ModelConfig& config() const { return config_; }

  // Every linear layer that target_modules may address, as (HF module path, projection), in model order.
  // Output heads (an LM head, a classifier) are flagged by is_output_head().
  std::vector<std::pair<std::string, Projection>> projections();
  virtual bool is_output_head(const std::string& module_path) const = 0;

  // Freezes every parameter of the base model (requires_grad = false).
  void freeze();

  // The input token embedding matrix (V, d) (prompt initialisation reads it).
  virtual torch::Tensor input_embeddings() = 0;

  // Positions the input prefix (prompt tuning) takes before the real tokens.
  int64_t virtual_tokens() const { return hooks.input_prefix ? hooks.input_prefix->length() : 0; }
  // Positions an attention prefix takes: like HF's past_key_values, real tokens are numbered after them.
  int64_t prefix_positions() const { return hooks.attention_prefix ? hooks.attention_prefix->length() : 0; }
  // Real tokens one sequence may hold: max_position_embeddings less the virtual tokens and prefix positions.
  int64_t max_sequence_length() const {
    return config_.max_position_embeddings - virtual_tokens() - prefix_positions();
  }

  // The family's name table, for the loader and the exporter: every checkpoint tensor in module order; which
  // of them the checkpoint stores transposed, [in, out] (GPT-2's Conv1D); a prefix some checkpoints leave out
  // of every name; checkpoint tensors that are known not to be parameters; parameters a checkpoint may lack,
  // which then keep the initialisation the model gave them (a task head the base model never had).
  virtual std::vector<std::string> tensor_names() const = 0;
  virtual bool stored_transposed(const std::string& tensor_name) const { return false; }
  virtual std::string optional_name_prefix() const { return ""; }
  virtual bool expected_unused(const std::string& tensor_name) const { return false; }
  virtual bool may_be_absent(const std::string& tensor_name) const { return false; }

  // Where block i lives ("model.layers.3", "transformer.h.3") and its norms' parameters relative to it (what
  // Houlsby adapters' train_norms unfreezes): the places methods that work per block attach to.
  virtual std::string block_path(int64_t index) const = 0;
  virtual std::vector<std::string> block_norms() const = 0;

  // PEFT's default target_modules for this family.
  virtual std::vector<std::string> default_targets(DefaultTargets which) const = 0;

  ModelHooks hooks;

 protected:
  ModelConfig config_;
};

}  // namespace peft
