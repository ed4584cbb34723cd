// The Phi-3 family: Phi3ForCausalLM (Phi-3, Phi-3.5 and Phi-4 mini). A Llama-shaped decoder whose query, key and
// value projections are one fused qkv_proj and whose gate and up projections are one fused gate_up_proj; PEFT
// adapts them by those names, as single matrices. Partial rotary (Phi-4 mini), longrope scaling (the 128k
// models) and a sliding window on every layer come from models/decoder/. Module names are HF's (phi3/names.h).
#pragma once

#include <torch/torch.h>

#include "models/decoder/decoder.h"

namespace peft {

class Phi3AttentionImpl : public torch::nn::Module {
 public:
  Phi3AttentionImpl(const ModelConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const DecoderPass& pass, AttentionPrefix* prefix, int64_t layer);
  Projection qkv_proj{nullptr}, o_proj{nullptr};  // qkv_proj's rows: queries, then keys, then values
  ModelConfig config;
};
TORCH_MODULE(Phi3Attention);

class Phi3MlpImpl : public torch::nn::Module {
 public:
  Phi3MlpImpl(const ModelConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);  // gate, up = gate_up(x) halves; down(up * silu(gate))
  Projection gate_up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Phi3Mlp);

class Phi3DecoderLayer : public DecoderLayer {
 public:
  Phi3DecoderLayer(const ModelConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const DecoderPass& pass, ModelHooks* hooks, int64_t index) override;
  RmsNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Phi3Attention self_attn{nullptr};
  Phi3Mlp mlp{nullptr};
};

class Phi3ForCausalLM : public DecoderForCausalLM {
 public:
  Phi3ForCausalLM(const ModelConfig& config, const torch::TensorOptions& options);
  std::vector<std::string> block_norms() const override {
    return {"input_layernorm.weight", "post_attention_layernorm.weight"};
  }
};

}  // namespace peft
