// What the PEFT methods and the tools see of any base model, whatever its origin: its linear layers as
// Projections under their module paths (hook point 1), its configuration, and the task-independent facts the
// trainer needs. Transformer (families the tool knows) and ScriptModel (a TorchScript module of an unknown
// architecture) are the two kinds.
#pragma once

#include <torch/torch.h>

#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "models/model_config.h"
#include "models/projection.h"

namespace peft {

class Transformer;

// The target_modules a method takes when the config names none: PEFT's per-family defaults.
enum class DefaultTargets { lora, ia3, ia3_feedforward, bitfit_subset };

class Model : public torch::nn::Module {
 public:
  explicit Model(ModelConfig config) : config_(std::move(config)) {}

  const ModelConfig& config() const { return config_; }
  // What the model is, for messages: its architecture, or "the TorchScript module PATH".
  virtual std::string description() const { return config_.architecture; }

  // Every linear layer that target_modules may address, as (module path, projection), in model order.
  // Output heads (an LM head, a classifier) are flagged by is_output_head().
  std::vector<std::pair<std::string, Projection>> projections();
  virtual bool is_output_head(const std::string& module_path) const = 0;
  // Checkpoint tensors stored [in, out] (GPT-2's Conv1D): LoRA and (IA)³ record fan_in_fan_out for them.
  virtual bool stored_transposed(const std::string& tensor_name) const { return false; }
  // PEFT's default target_modules for this family; empty when there is none (an unknown architecture).
  virtual std::vector<std::string> default_targets(DefaultTargets which) const = 0;

  // Whether a method may give a bias-less linear layer a bias (BitFit): not where the model's own code decides
  // which tensors its layers use (a TorchScript module).
  virtual bool can_add_biases() const { return true; }

  // Freezes every parameter of the base model (requires_grad = false).
  void freeze();

  // Positions taken before the real tokens by prompt tuning's virtual tokens and prefix tuning's keys, and the
  // real tokens one sequence may hold.
  virtual int64_t virtual_tokens() const { return 0; }
  virtual int64_t prefix_positions() const { return 0; }
  virtual int64_t max_sequence_length() const { return std::numeric_limits<int32_t>::max(); }

 protected:
  ModelConfig config_;
};

// `model` as a Transformer, for methods that work on a known architecture's blocks, attention or embeddings;
// otherwise a peft::Error naming the method and the methods that do apply.
Transformer& require_transformer(Model& model, const std::string& method);

}  // namespace peft
