#include "models/phi3/phi3.h"

namespace peft {

Phi3AttentionImpl::Phi3AttentionImpl(const ModelConfig& config_, const torch::TensorOptions& options)
    : config(config_) {
  int64_t d = config.hidden_size, d_h = config.head_dim;
  int64_t heads = config.num_attention_heads, kv_heads = config.num_key_value_heads;
  qkv_proj = register_module("qkv_proj", Projection(d, (heads + 2 * kv_heads) * d_h, false, options));
  o_proj = register_module("o_proj", Projection(heads * d_h, d, false, options));
}

torch::Tensor Phi3AttentionImpl::forward(const torch::Tensor& x, const DecoderPass& pass, AttentionPrefix* prefix,
                                         int64_t layer) {
  int64_t batch = x.size(0), length = x.size(1), d_h = config.head_dim;
  int64_t query_width = config.num_attention_heads * d_h, kv_width = config.num_key_value_heads * d_h;
  auto qkv = qkv_proj(x);
  auto heads = [&](int64_t start, int64_t width) {
    return qkv.narrow(-1, start, width).view({batch, length, -1, d_h}).transpose(1, 2);  // (B, n, T, d_h)
  };
  auto context = decoder_attention(heads(0, query_width), heads(query_width, kv_width),
                                   heads(query_width + kv_width, kv_width), pass, config, prefix, layer);
  return o_proj(context);
}

Phi3MlpImpl::Phi3MlpImpl(const ModelConfig& config, const torch::TensorOptions& options) {
  int64_t d = config.hidden_size, ff = config.intermediate_size;
  gate_up_proj = register_module("gate_up_proj", Projection(d, 2 * ff, false, options));
  down_proj = register_module("down_proj", Projection(ff, d, false, options));
}

torch::Tensor Phi3MlpImpl::forward(const torch::Tensor& x) {
  auto gate_up = gate_up_proj(x);
  int64_t ff = gate_up.size(-1) / 2;
  return down_proj(gate_up.narrow(-1, ff, ff) * torch::silu(gate_up.narrow(-1, 0, ff)));
}

Phi3DecoderLayer::Phi3DecoderLayer(const ModelConfig& config, const torch::TensorOptions& options) {
  self_attn = register_module("self_attn", Phi3Attention(config, options));
  mlp = register_module("mlp", Phi3Mlp(config, options));
  input_layernorm = register_module("input_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps, options));
}

torch::Tensor Phi3DecoderLayer::forward(const torch::Tensor& x, const DecoderPass& pass, ModelHooks* hooks,
                                        int64_t index) {
  AttentionPrefix* prefix = hooks ? hooks->attention_prefix.get() : nullptr;
  return pre_norm_block(
      x, input_layernorm, [&](const torch::Tensor& h) { return self_attn->forward(h, pass, prefix, index); },
      post_attention_layernorm, [&](const torch::Tensor& h) { return mlp(h); }, hooks, index);
}

namespace {

std::shared_ptr<DecoderLayer> make_phi3_layer(const ModelConfig& config, int64_t, const torch::TensorOptions& options) {
  return std::make_shared<Phi3DecoderLayer>(config, options);
}

}  // namespace

Phi3ForCausalLM::Phi3ForCausalLM(const ModelConfig& config, const torch::TensorOptions& options)
    : DecoderForCausalLM(config, options, make_phi3_layer, {}) {}

}  // namespace peft
