#include "models/gemma/gemma.h"

namespace peft {

GemmaDecoderLayer::GemmaDecoderLayer(const ModelConfig& config, const torch::TensorOptions& options) {
  auto norm = [&](const char* name) {
    return register_module(name, RmsNorm(config.hidden_size, config.rms_norm_eps, options, /*unit_offset=*/true));
  };
  self_attn = register_module("self_attn", DecoderAttention(config, options, /*unit_offset_norms=*/true));
  mlp = register_module("mlp", GatedMlp(config, options));
  input_layernorm = norm("input_layernorm");
  post_attention_layernorm = norm("post_attention_layernorm");
  pre_feedforward_layernorm = norm("pre_feedforward_layernorm");
  post_feedforward_layernorm = norm("post_feedforward_layernorm");
}

torch::Tensor GemmaDecoderLayer::forward(const torch::Tensor& x, const DecoderPass& pass, ModelHooks* hooks,
                                         int64_t index) {
  AttentionPrefix* prefix = hooks ? hooks->attention_prefix.get() : nullptr;
  // Each sub-layer's output is normalised before the residual add.
  return pre_norm_block(
      x, input_layernorm,
      [&](const torch::Tensor& h) { return post_attention_layernorm(self_attn->forward(h, pass, prefix, index)); },
      pre_feedforward_layernorm, [&](const torch::Tensor& h) { return post_feedforward_layernorm(mlp(h)); }, hooks,
      index);
}

namespace {

std::shared_ptr<DecoderLayer> make_gemma_layer(const ModelConfig& config, int64_t, const torch::TensorOptions& options) {
  return std::make_shared<GemmaDecoderLayer>(config, options);
}

}  // namespace

GemmaForCausalLM::GemmaForCausalLM(const ModelConfig& config, const torch::TensorOptions& options)
    : DecoderForCausalLM(config, options, make_gemma_layer, {/*unit_offset_norm=*/true, /*scale_embeddings=*/true}) {}

}  // namespace peft
