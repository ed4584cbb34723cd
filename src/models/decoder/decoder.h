// What the rotary decoder families (Llama, Gemma, Phi-3) share: the pre-norm stack "model" (embed_tokens,
// layers, norm) with an lm_head, RMSNorm, the per-pass rotary angles and masks for full-attention and sliding
// layers, and the attention core (rotation, prefix keys, grouped-query heads, window, soft-capping). A family
// folder adds its decoder layer (its projections and sub-layer order), its name table and its registry entry.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "models/causal_lm.h"
#include "models/decoder/rotary.h"
#include "models/kv_cache.h"
#include "models/layers.h"

namespace peft {

// RMSNorm normalised in float32. Llama's multiplies by w after casting back; Gemma's (`unit_offset`) by (1 + w) in
// float32 and then casts, as each family's HF code does.
class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t size, double eps, const torch::TensorOptions& options, bool unit_offset = false);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;  // (d)
  double eps;
  bool unit_offset;
};
TORCH_MODULE(RmsNorm);

// Rotary angles of one pass: (T, dim), or (B, 1, T, dim) for packed rows whose positions restart.
struct RotaryAngles {
  torch::Tensor cos, sin;
};

// What every block of one forward pass shares, for full-attention and for sliding layers: the rotary angles and
// the additive float32 mask (B or 1, 1, T, P + T) over prefix + sequence keys; with a KV cache (generation), the
// cache the layers append to, the mask then covering every slot it holds.
struct DecoderPass {
  RotaryAngles full, sliding;
  torch::Tensor full_mask, sliding_mask;
  KvCache* cache = nullptr;
  const RotaryAngles& angles(bool sliding_layer) const { return sliding_layer ? sliding : full; }
  const torch::Tensor& mask(bool sliding_layer) const { return sliding_layer ? sliding_mask : full_mask; }
};

// A model's rotary tables (one set, or two where sliding layers rotate with their own base) and the pass maker.
class DecoderPositions {
 public:
  explicit DecoderPositions(const ModelConfig& config);
  // The pass for x (B, T, d) under attention_mask (B, T), after `prefix_length` attention-prefix positions (the
  // caller has checked the length).
  DecoderPass make_pass(const torch::Tensor& x, const torch::Tensor& attention_mask, int64_t prefix_length);
  // The pass of one generation step for x (B, T, d) under attention_mask (B, T), written to `cache`: a prefill
  // (empty cache) takes positions from `prefix_length` on, with the attention prefix's slots first; a later step
  // continues each row's positions.
  DecoderPass make_cached_pass(const torch::Tensor& x, const torch::Tensor& attention_mask, KvCache& cache,
                               int64_t prefix_length);

 private:
  ModelConfig config_;
  RotaryTables full_;
  std::optional<RotaryTables> sliding_;
};

// q (B, n_h, T, d_h), k and v (B, n_kv, T, d_h) after the family's projections (and q/k norms) -> context
// (B, T, n_h·d_h): rotation by the layer's angles, prefix keys joined after it (never rotated; in a cached pass at
// the prefill only), the pass's cache appended to, grouped-query heads shared, softmax(q·kᵀ·scale, soft-capped, +
// mask)·v with the layer's mask.
torch::Tensor decoder_attention(torch::Tensor q, torch::Tensor k, torch::Tensor v, const DecoderPass& pass,
                                const ModelConfig& config, AttentionPrefix* prefix, int64_t layer);

// Attention with separate q_proj, k_proj, v_proj, o_proj (Llama, Gemma): heads viewed from the projections,
// Qwen3's and Gemma 3's per-head q_norm / k_norm (config.qk_norm; Gemma's as x̂·(1 + w): `unit_offset_norms`),
// then decoder_attention and o_proj.
class DecoderAttentionImpl : public torch::nn::Module {
 public:
  DecoderAttentionImpl(const ModelConfig& config, const torch::TensorOptions& options, bool unit_offset_norms);
  torch::Tensor forward(const torch::Tensor& x, const DecoderPass& pass, AttentionPrefix* prefix, int64_t layer);
  Projection q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RmsNorm q_norm{nullptr}, k_norm{nullptr};  // with config.qk_norm only
  ModelConfig config;
};
TORCH_MODULE(DecoderAttention);

// The gated MLP down(act(gate(x)) * up(x)): SwiGLU (silu, Llama) or GeGLU (tanh or exact gelu, Gemma).
class GatedMlpImpl : public torch::nn::Module {
 public:
  GatedMlpImpl(const ModelConfig& config, const torch::TensorOptions& options);  // act from config.hidden_act
  torch::Tensor forward(const torch::Tensor& x);
  Projection gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  std::string activation;
};
TORCH_MODULE(GatedMlp);

// The pre-norm block every rotary family's layer is: y = x + attention(attention_norm(x)), then
// y + mlp(mlp_norm(y)), with hook point 4's taps on each sub-layer's output (`hooks` may be null). A family's
// sub-layer may add its own post-norm inside (Gemma).
using SubLayer = std::function<torch::Tensor(const torch::Tensor&)>;
torch::Tensor pre_norm_block(const torch::Tensor& x, RmsNorm& attention_norm, const SubLayer& attention,
                             RmsNorm& mlp_norm, const SubLayer& mlp, ModelHooks* hooks, int64_t index);

// One decoder layer of a family: x + its sub-layers, calling `hooks` (may be null) at their sites as layer `index`.
class DecoderLayer : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x, const DecoderPass& pass, ModelHooks* hooks, int64_t index) = 0;
};
using DecoderLayerFactory =
    std::function<std::shared_ptr<DecoderLayer>(const ModelConfig&, int64_t index, const torch::TensorOptions&)>;

// "model" in HF's naming: embeddings, the decoder layers and the final norm.
class DecoderBackboneImpl : public torch::nn::Module {
 public:
  DecoderBackboneImpl(const ModelConfig& config, const torch::TensorOptions& options,
                      const DecoderLayerFactory& make_layer, bool unit_offset_norm);
  TokenEmbedding embed_tokens{nullptr};
  std::vector<std::shared_ptr<DecoderLayer>> layers;
  RmsNorm norm{nullptr};
};
TORCH_MODULE(DecoderBackbone);

// A causal LM of a rotary decoder family: model.embed_tokens, model.layers.N, model.norm, lm_head (tied to the
// embeddings when the config says so).
class DecoderForCausalLM : public CausalLM {
 public:
  struct Options {
    bool unit_offset_norm = false;  // final norm as x̂·(1 + w) (Gemma)
    bool scale_embeddings = false;  // inputs × √hidden_size in the model dtype (Gemma)
  };
  // Parameters are allocated uninitialised with `options` (dtype, device); load_model() fills them.
  DecoderForCausalLM(const ModelConfig& config, const torch::TensorOptions& options,
                     const DecoderLayerFactory& make_layer, Options family);

  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) override;
  bool supports_kv_cache() const override { return !hooks.stack; }
  torch::Tensor decode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask, KvCache& cache) override;
  Projection head() override { return lm_head; }
  void untie_head() override { lm_head = register_untied_head(lm_head); }
  torch::Tensor input_embeddings() override { return model->embed_tokens->weight; }
  bool is_output_head(const std::string& module_path) const override { return module_path == "lm_head"; }
  std::string block_path(int64_t index) const override { return "model.layers." + std::to_string(index); }

  DecoderBackbone model{nullptr};
  Projection lm_head{nullptr};  // registered only when untied; shares the embedding matrix when tied

 protected:
  // The embeddings (scaled where the family does) and the outputs of blocks 0..last, no hooks, no final norm.
  BackboneStates run_backbone(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              const std::vector<int64_t>& blocks);

 private:
  // What enters the stack: × √hidden_size where the family scales its inputs (Gemma).
  torch::Tensor scale_inputs(const torch::Tensor& x) const;
  Options family_;
  DecoderPositions positions_;
};

}  // namespace peft
