// The Llama family: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (pre-norm decoder, RMSNorm,
// rotary embeddings in HF's rotate_half convention, grouped-query attention, SwiGLU MLP). Submodules are
// registered under Hugging Face's module names, so parameter names are the checkpoint's tensor names and the
// loader looks each one up by name (llama/names.h lists them).
#pragma once

#include <torch/torch.h>

#include "models/causal_lm.h"
#include "models/layers.h"

namespace peft {

class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t size, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // normalised in float32, as HF does
  torch::Tensor weight;                           // (d)
  double eps;
};
TORCH_MODULE(RmsNorm);

// cos/sin tables (T, d_h) of rotary embeddings for positions 0..T-1, cached for the longest length seen.
class RotaryTables {
 public:
  RotaryTables(int64_t head_dim, double theta) : head_dim_(head_dim), theta_(theta) {}
  std::pair<torch::Tensor, torch::Tensor> get(int64_t length, const torch::Device& device, torch::Dtype dtype);

 private:
  int64_t head_dim_;
  double theta_;
  torch::Tensor cos_, sin_;
};

// What every block of one forward pass shares.
struct LlamaPass {
  torch::Tensor cos, sin;  // (T, d_h)
  torch::Tensor mask;      // additive float32 (B or 1, 1, T, P + T) over prefix + sequence keys
};

class LlamaAttentionImpl : public torch::nn::Module {
 public:
  LlamaAttentionImpl(const ModelConfig& config, const torch::TensorOptions& options);
  // x (B, T, d); cos/sin (T, d_h); mask (B or 1, 1, T, P + T) additive float32 over prefix + sequence keys.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, AttentionPrefix* prefix, int64_t layer);
  Projection q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t num_heads, num_kv_heads, head_dim;
};
TORCH_MODULE(LlamaAttention);

class LlamaMlpImpl : public torch::nn::Module {
 public:
  LlamaMlpImpl(const ModelConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // down(silu(gate(x)) * up(x))
  Projection gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(LlamaMlp);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  LlamaDecoderLayerImpl(const ModelConfig& config, const torch::TensorOptions& options);
  // x + attention(norm(x)), then + mlp(norm(x)); `hooks` (may be null) are called at their sites as layer `index`.
  torch::Tensor forward(const torch::Tensor& x, const LlamaPass& pass, ModelHooks* hooks, int64_t index);
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  LlamaAttention self_attn{nullptr};
  LlamaMlp mlp{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

// "model" in HF's naming: embeddings, the decoder stack and the final norm.
class LlamaBackboneImpl : public torch::nn::Module {
 public:
  LlamaBackboneImpl(const ModelConfig& config, const torch::TensorOptions& options);
  TokenEmbedding embed_tokens{nullptr};
  std::vector<LlamaDecoderLayer> layers;
  RmsNorm norm{nullptr};
};
TORCH_MODULE(LlamaBackbone);

// Blocks and a final norm without embeddings: the side network of Ladder Side-Tuning.
class LlamaStackImpl : public BlockStack {
 public:
  LlamaStackImpl(const ModelConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& attention_mask,
                        const BlockInput& before_block) override;
  std::vector<LlamaDecoderLayer> layers;
  RmsNorm norm{nullptr};

 private:
  RotaryTables rotary_;
};

class LlamaForCausalLM : public CausalLM {
 public:
  // Parameters are allocated uninitialised with `options` (dtype, device); load_model() fills them.
  LlamaForCausalLM(const ModelConfig& config, const torch::TensorOptions& options);

  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) override;
  Projection head() override { return lm_head; }
  torch::Tensor input_embeddings() override { return model->embed_tokens->weight; }
  bool is_output_head(const std::string& module_path) const override { return module_path == "lm_head"; }
  BackboneStates backbone_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                 const std::vector<int64_t>& blocks) override;
  std::shared_ptr<BlockStack> make_block_stack(const ModelConfig& config,
                                               const torch::TensorOptions& options) const override;
  StackLayout stack_layout() const override;
  std::vector<std::string> tensor_names() const override;
  std::vector<std::string> default_targets(DefaultTargets which) const override;
  std::string block_path(int64_t index) const override { return "model.layers." + std::to_string(index); }
  std::vector<std::string> block_norms() const override {
    return {"input_layernorm.weight", "post_attention_layernorm.weight"};
  }

  LlamaBackbone model{nullptr};
  Projection lm_head{nullptr};  // registered only when untied; shares the embedding matrix when tied

 private:
  RotaryTables rotary_;
};

}  // namespace peft
