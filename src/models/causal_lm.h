// The interface every model family implements: a causal language model over token ids whose linear layers are
// Projections (hook point 1) and which calls the ModelHooks at their sites (hook points 2-4).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/hf_config.h"
#include "models/hooks.h"
#include "models/projection.h"

namespace peft {

// What the frozen backbone computes for Ladder Side-Tuning to read: the input embeddings and the outputs of
// chosen blocks.
struct BackboneStates {
  torch::Tensor embeddings;           // (B, T, d)
  std::vector<torch::Tensor> blocks;  // (B, T, d) each, in the order asked for
};

// A stack of the family's own blocks, at the sizes of another ModelConfig, and a final norm: Ladder
// Side-Tuning's side network. Parameters are allocated uninitialised and frozen and are named as in the
// backbone's stack (layers.N.<block names>, norm.weight), so that pruning can slice one into the other.
class BlockStack : public torch::nn::Module {
 public:
  // Gives block i's input from the running state x (the ladder connections of LST).
  using BlockInput = std::function<torch::Tensor(int64_t block, const torch::Tensor& x)>;
  // x (B, T, d'), attention_mask (B, T) -> the final-normed output (B, T, d').
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attention_mask,
                                const BlockInput& before_block) = 0;
};

// What each dimension of a stack parameter indexes, so that structural pruning can sum importance per unit
// and slice the backbone's parameters into a narrower stack's. query_heads and kv_heads index (head, head dim)
// pairs flattened; `other` is never pruned (the vocabulary of an embedding).
enum class Axis { hidden, query_heads, kv_heads, feed_forward, other };
struct ParameterAxes {
  std::string name;  // relative to a block ("self_attn.q_proj.weight") or to the stack ("norm.weight")
  std::vector<Axis> axes;
};
// The family's name table for that: where the stack lives and what every parameter's axes are.
struct StackLayout {
  std::string stack_prefix;  // the stack's path in the model, e.g. "model." (blocks at model.layers.N.)
  std::vector<ParameterAxes> block;
  std::vector<ParameterAxes> outside_blocks;  // relative to stack_prefix: embeddings, final norm
  bool rotary = false;  // rotary embeddings pair head dims (j, j + d_h/2), so pruning keeps pairs together
};

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

  // Ladder Side-Tuning's access to the stack. backbone_states() runs the embeddings and the blocks up to the
  // last one asked for (no hooks, no final norm); autograd is the caller's business.
  virtual BackboneStates backbone_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                         const std::vector<int64_t>& blocks) = 0;
  // `config.num_hidden_layers` blocks of this family at `config`'s sizes.
  virtual std::shared_ptr<BlockStack> make_block_stack(const ModelConfig& config,
                                                       const torch::TensorOptions& options) const = 0;
  virtual StackLayout stack_layout() const = 0;

  ModelHooks hooks;

 protected:
  ModelConfig config_;
};

}  // namespace peft
