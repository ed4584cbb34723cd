#include "models/llama/llama.h"

#include "core/error.h"
#include "models/llama/names.h"

namespace peft {

LlamaDecoderLayer::LlamaDecoderLayer(const ModelConfig& config, const torch::TensorOptions& options) {
  self_attn = register_module("self_attn", DecoderAttention(config, options, /*unit_offset_norms=*/false));
  mlp = register_module("mlp", GatedMlp(config, options));
  input_layernorm = register_module("input_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps, options));
}

torch::Tensor LlamaDecoderLayer::forward(const torch::Tensor& x, const DecoderPass& pass, ModelHooks* hooks,
                                         int64_t index) {
  AttentionPrefix* prefix = hooks ? hooks->attention_prefix.get() : nullptr;
  return pre_norm_block(
      x, input_layernorm, [&](const torch::Tensor& h) { return self_attn->forward(h, pass, prefix, index); },
      post_attention_layernorm, [&](const torch::Tensor& h) { return mlp(h); }, hooks, index);
}

namespace {

std::shared_ptr<DecoderLayer> make_llama_layer(const ModelConfig& config, int64_t, const torch::TensorOptions& options) {
  return std::make_shared<LlamaDecoderLayer>(config, options);
}

}  // namespace

LlamaStackImpl::LlamaStackImpl(const ModelConfig& config, const torch::TensorOptions& options) : positions_(config) {
  auto list = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layers.push_back(std::make_shared<LlamaDecoderLayer>(config, options));
    list->push_back(layers.back());
  }
  norm = register_module("norm", RmsNorm(config.hidden_size, config.rms_norm_eps, options));
}

torch::Tensor LlamaStackImpl::forward(const torch::Tensor& x, const torch::Tensor& attention_mask,
                                      const BlockInput& before_block) {
  auto pass = positions_.make_pass(x, attention_mask, 0);
  auto s = x;
  for (size_t i = 0; i < layers.size(); ++i) {
    int64_t index = static_cast<int64_t>(i);
    s = layers[i]->forward(before_block(index, s), pass, nullptr, index);
  }
  return norm(s);
}

LlamaForCausalLM::LlamaForCausalLM(const ModelConfig& config, const torch::TensorOptions& options)
    : DecoderForCausalLM(config, options, make_llama_layer, {}) {}

std::shared_ptr<BlockStack> LlamaForCausalLM::make_block_stack(const ModelConfig& config,
                                                               const torch::TensorOptions& options) const {
  return std::make_shared<LlamaStackImpl>(config, options);
}

StackLayout LlamaForCausalLM::stack_layout() const {
  // Pruning would have to slice the per-head q/k norms along the head dimension; not implemented.
  check(!config_.qk_norm, "lst: Ladder Side-Tuning is not available for " + config_.architecture +
                              " (its per-head q_norm/k_norm are not pruned)");
  return llama::stack_layout(config_);
}

}  // namespace peft
