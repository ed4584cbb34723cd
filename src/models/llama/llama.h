// The Llama family: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (pre-norm decoder, RMSNorm,
// rotary embeddings in HF's rotate_half convention, grouped-query attention, SwiGLU MLP). Submodules are
// registered under Hugging Face's module names, so parameter names are the checkpoint's tensor names and the
// loader looks each one up by name (llama/names.h lists them).
#pragma once

#include <torch/torch.h>

#include "models/causal_lm.h"

namespace peft {

class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t size, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // normalised in float32, as HF does
  torch::Tensor weight;                           // (d)
  double eps;
};
TORCH_MODULE(RmsNorm);

// A lookup table registered as `<name>.weight`, like nn.Embedding but left uninitialised for the loader.
class TokenEmbeddingImpl : public torch::nn::Module {
 public:
  TokenEmbeddingImpl(int64_t vocab_size, int64_t dim, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }
  torch::Tensor weight;  // (V, d)
};
TORCH_MODULE(TokenEmbedding);

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

class LlamaForCausalLM : public CausalLM {
 public:
  // Parameters are allocated uninitialised with `options` (dtype, device); load_model() fills them.
  LlamaForCausalLM(const ModelConfig& config, const torch::TensorOptions& options);

  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) override;
  Projection head() override { return lm_head; }
  torch::Tensor input_embeddings() override { return model->embed_tokens->weight; }
  bool is_output_head(const std::string& module_path) const override { return module_path == "lm_head"; }

  LlamaBackbone model{nullptr};
  Projection lm_head{nullptr};  // registered only when untied; shares the embedding matrix when tied

 private:
  // cos/sin tables (T, d_h) for positions 0..T-1, cached for the longest length seen.
  std::pair<torch::Tensor, torch::Tensor> rotary_tables(int64_t length, const torch::Device& device,
                                                        torch::Dtype dtype);
  torch::Tensor rotary_cos_, rotary_sin_;
};

}  // namespace peft
