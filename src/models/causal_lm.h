// The interface of decoder families: a causal language model over token ids (models/transformer.h has what every
// family shares with the PEFT methods).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/transformer.h"

namespace peft {

class KvCache;

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
// pairs flattened; fused_qkv_heads is [queries; keys; values] of a fused projection without grouped-query
// attention (GPT-2's c_attn); `other` is never pruned (the vocabulary or positions of an embedding).
enum class Axis { hidden, query_heads, kv_heads, fused_qkv_heads, feed_forward, other };
struct ParameterAxes {
  std::string name;  // relative to a block ("self_attn.q_proj.weight") or to the stack ("norm.weight")
  std::vector<Axis> axes;
};
// The family's name table for that: where the stack lives and what every parameter's axes are.
struct StackLayout {
  std::string stack_prefix;       // the stack's path in the model, e.g. "model." (blocks at model.layers.N.)
  std::string blocks = "layers";  // the block list's name under stack_prefix
  std::vector<ParameterAxes> block;
  std::vector<ParameterAxes> outside_blocks;  // relative to stack_prefix: embeddings, final norm
  bool rotary = false;  // rotary embeddings pair head dims (j, j + d_h/2), so pruning keeps pairs together
};

// A decoder that predicts the next token: hidden states, an output head over the vocabulary, and Ladder
// Side-Tuning's access to its block stack.
class CausalLM : public Transformer {
 public:
  using Transformer::Transformer;

  // Final normalised hidden states (B, T, d) for input_ids (B, T) with attention_mask (B, T) (1 = token,
  // 0 = padding); positions of virtual tokens from an InputPrefix are already removed.
  virtual torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) = 0;

  // Incremental decoding for generation: the final hidden states (B, T, d) of input_ids (B, T) (attention_mask
  // (B, T), right-padded) after the positions `cache` holds, whose keys and values it appends. The first call, on
  // an empty cache, is the prefill: an input prefix's virtual tokens and an attention prefix enter the cache there,
  // once. A family (or a method) that cannot says so in supports_kv_cache(), and generation re-runs the sequence.
  virtual bool supports_kv_cache() const { return false; }
  virtual torch::Tensor decode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask, KvCache& cache);

  // The output head: logits = hidden·Wᵀ. For tied models this is the embedding matrix.
  virtual Projection head() = 0;

  // Gives a head tied to the embeddings a copy of its own, registered as lm_head; config().tie_word_embeddings is
  // false afterwards, so that a merged model is written with both matrices (PEFT's modules_to_save trains a copy).
  virtual void untie_head();

  // Logits (B, T, V) computed through the head (with its hooks).
  torch::Tensor logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
  // The head's logits for final hidden states (..., d), soft-capped where the family caps them (Gemma 2).
  torch::Tensor head_logits(const torch::Tensor& hidden);

  // Ladder Side-Tuning's access to the stack, optional for a family (the defaults say it is not available).
  // backbone_states() runs the embeddings and the blocks up to the last one asked for (no hooks, no final norm);
  // autograd is the caller's business.
  virtual BackboneStates backbone_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                         const std::vector<int64_t>& blocks);
  // `config.num_hidden_layers` blocks of this family at `config`'s sizes.
  virtual std::shared_ptr<BlockStack> make_block_stack(const ModelConfig& config,
                                                       const torch::TensorOptions& options) const;
  virtual StackLayout stack_layout() const;

 protected:
  // For untie_head(): a copy of the tied head's matrix, registered as `lm_head` (the name of every family's head).
  Projection register_untied_head(const Projection& tied);
};

}  // namespace peft
