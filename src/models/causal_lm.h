// The interface every model family implements: a causal language model over token ids whose linear layers are
// Projections (hook point 1) and which calls the ModelHooks at their sites (hook points 2-4).
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "io/hf_config.h"
#include "models/hooks.h"
#include "models/projection.h"

namespace peft {

class CausalLM : public torch::nn::Module {
 public:
  explicit CausalLM(ModelConfig config) : config_(std::move(config)) {}

  const ModelConfig& config() const { return config_; }

  // Final normalised hidden states (B, T, d) for input_ids (B, T) with attention_mask (B, T) (1 = token,
  // 0 = padding); positions of virtual tokens from an InputPrefix are already removed.
  virtual torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) = 0;

  // The output head: logits = hidden·Wᵀ. For tied models this is the embedding matrix.
  virtual Projection head() = 0;

  // Logits (B, T, V) computed through the head (with its hooks).
  torch::Tensor logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);

  // Every linear layer that target_modules may address, as (HF module path, projection), in model order.
  // The output head is listed last and flagged by is_output_head().
  std::vector<std::pair<std::string, Projection>> projections();
  virtual bool is_output_head(const std::string& module_path) const = 0;

  // Freezes every parameter of the base model (requires_grad = false).
  void freeze();

  // The input token embedding matrix (V, d) (prompt initialisation reads it).
  virtual torch::Tensor input_embeddings() = 0;

  // Positions the input prefix (prompt tuning) takes before the real tokens.
  int64_t virtual_tokens() const { return hooks.input_prefix ? hooks.input_prefix->length() : 0; }
  // Real tokens one sequence may hold: max_position_embeddings less the virtual tokens.
  int64_t max_sequence_length() const { return config_.max_position_embeddings - virtual_tokens(); }

  ModelHooks hooks;

 protected:
  ModelConfig config_;
};

}  // namespace peft
