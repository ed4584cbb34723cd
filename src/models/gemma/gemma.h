// The Gemma family: Gemma2ForCausalLM and Gemma3ForCausalLM (the text model; a Gemma 3 multimodal checkpoint's
// text tower loads through its text_config). Pre- and post-norms around both sub-layers, RMSNorm as x̂·(1 + w) in
// float32, inputs scaled by √hidden_size, GeGLU (tanh gelu), attention scaled by query_pre_attn_scalar^-½, local
// (sliding-window) and global layers; Gemma 2 soft-caps attention scores and the output logits, Gemma 3 normalises
// each query and key head and rotates its local layers with their own base. Module names are HF's (gemma/names.h).
#pragma once

#include <torch/torch.h>

#include "models/decoder/decoder.h"

namespace peft {

class GemmaDecoderLayer : public DecoderLayer {
 public:
  GemmaDecoderLayer(const ModelConfig& config, const torch::TensorOptions& options);
  // x + post_norm(attention(norm(x))), then + post_norm(mlp(pre_norm(x))).
  torch::Tensor forward(const torch::Tensor& x, const DecoderPass& pass, ModelHooks* hooks, int64_t index) override;
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  RmsNorm pre_feedforward_layernorm{nullptr}, post_feedforward_layernorm{nullptr};
  DecoderAttention self_attn{nullptr};  // Gemma 3: with q_norm / k_norm as x̂·(1 + w)
  GatedMlp mlp{nullptr};                // down(gelu(gate(x)) * up(x))
};

class GemmaForCausalLM : public DecoderForCausalLM {
 public:
  GemmaForCausalLM(const ModelConfig& config, const torch::TensorOptions& options);
  std::vector<std::string> block_norms() const override {
    return {"input_layernorm.weight", "post_attention_layernorm.weight", "pre_feedforward_layernorm.weight",
            "post_feedforward_layernorm.weight"};
  }
};

}  // namespace peft
