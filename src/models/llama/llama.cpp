#include "models/llama/llama.h"

#include <algorithm>

#include "core/error.h"
#include "models/llama/names.h"

namespace peft {
namespace {

// HF's rotate_half: (x1, x2) -> (-x2, x1) over the two halves of the head dimension.
torch::Tensor rotate_half(const torch::Tensor& x) {
  int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  return x * cos + rotate_half(x) * sin;
}

// (B, n_kv, T, d_h) -> (B, n_kv * n_rep, T, d_h): each key/value head serves n_rep query heads.
torch::Tensor repeat_kv(const torch::Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  auto sizes = x.sizes();
  return x.unsqueeze(2)
      .expand({sizes[0], sizes[1], n_rep, sizes[2], sizes[3]})
      .reshape({sizes[0], sizes[1] * n_rep, sizes[2], sizes[3]});
}

// The length check and the tables all blocks of a pass share. Keys and values of an attention prefix count as
// past tokens, so real positions start after them, as in HF with past_key_values (the prefix itself is never
// rotated).
LlamaPass make_pass(const ModelConfig& config, RotaryTables& rotary, const torch::Tensor& x,
                    const torch::Tensor& attention_mask, int64_t virtual_tokens, int64_t prefix_length) {
  int64_t length = x.size(1);
  check(prefix_length + length <= config.max_position_embeddings,
        "a sequence of " + std::to_string(length - virtual_tokens) + " tokens" +
            (virtual_tokens ? " + " + std::to_string(virtual_tokens) + " virtual tokens" : std::string()) +
            (prefix_length ? " after a " + std::to_string(prefix_length) + "-token prefix" : std::string()) +
            " exceeds the model's max_position_embeddings " + std::to_string(config.max_position_embeddings));
  auto [cos, sin] = rotary.get(prefix_length + length, x.device(), x.scalar_type());
  auto positions = packed_positions(attention_mask);
  if (positions.defined()) {            // packed rows: each example's rotation starts at position 0 -> (B, 1, T, d_h)
    auto flat = positions.reshape(-1);  // on the mask's device, which is x's
    return {cos.index_select(0, flat).view({positions.size(0), 1, length, -1}),
            sin.index_select(0, flat).view({positions.size(0), 1, length, -1}),
            attention_mask_bias(attention_mask, prefix_length)};
  }
  return {cos.narrow(0, prefix_length, length), sin.narrow(0, prefix_length, length),
          attention_mask_bias(attention_mask, prefix_length)};
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> RotaryTables::get(int64_t length, const torch::Device& device,
                                                          torch::Dtype dtype) {
  if (!cos_.defined() || cos_.size(0) < length || cos_.device() != device || cos_.scalar_type() != dtype) {
    int64_t cached = std::max<int64_t>(length, cos_.defined() ? cos_.size(0) : 0);
    // inv_freq = 1 / theta^(2i / d_h), computed in float32 as HF does.
    auto exponents =
        torch::arange(0, head_dim_, 2, torch::dtype(torch::kLong)).to(torch::kFloat) / static_cast<float>(head_dim_);
    auto inv_freq = 1.0 / torch::pow(static_cast<float>(theta_), exponents);
    auto positions = torch::arange(cached, torch::dtype(torch::kLong)).to(torch::kFloat);
    auto freqs = torch::outer(positions, inv_freq);  // (T, d_h / 2)
    auto angles = torch::cat({freqs, freqs}, -1);    // (T, d_h)
    cos_ = angles.cos().to(dtype).to(device);
    sin_ = angles.sin().to(dtype).to(device);
  }
  return {cos_.narrow(0, 0, length), sin_.narrow(0, 0, length)};
}

RmsNormImpl::RmsNormImpl(int64_t size, double eps_, const torch::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", torch::empty({size}, options), /*requires_grad=*/false);
}

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  auto x32 = x.to(torch::kFloat);
  auto normalised = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normalised.to(x.scalar_type());
}

LlamaAttentionImpl::LlamaAttentionImpl(const ModelConfig& config, const torch::TensorOptions& options)
    : num_heads(config.num_attention_heads), num_kv_heads(config.num_key_value_heads), head_dim(config.head_dim) {
  int64_t d = config.hidden_size;
  q_proj = register_module("q_proj", Projection(d, num_heads * head_dim, config.attention_bias, options));
  k_proj = register_module("k_proj", Projection(d, num_kv_heads * head_dim, config.attention_bias, options));
  v_proj = register_module("v_proj", Projection(d, num_kv_heads * head_dim, config.attention_bias, options));
  o_proj = register_module("o_proj", Projection(num_heads * head_dim, d, config.output_bias, options));
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                          const torch::Tensor& mask, AttentionPrefix* prefix, int64_t layer) {
  int64_t batch = x.size(0), length = x.size(1);
  auto q = q_proj(x).view({batch, length, num_heads, head_dim}).transpose(1, 2);     // (B, n_h, T, d_h)
  auto k = k_proj(x).view({batch, length, num_kv_heads, head_dim}).transpose(1, 2);  // (B, n_kv, T, d_h)
  auto v = v_proj(x).view({batch, length, num_kv_heads, head_dim}).transpose(1, 2);  // (B, n_kv, T, d_h)
  q = apply_rotary(q, cos, sin);
  k = apply_rotary(k, cos, sin);
  if (prefix) {
    // Prefix keys join after the rotation: they carry no position.
    auto [prefix_k, prefix_v] = prefix->prefix(layer, batch);  // (B, n_kv, l, d_h)
    k = torch::cat({prefix_k.to(k.scalar_type()), k}, 2);
    v = torch::cat({prefix_v.to(v.scalar_type()), v}, 2);
  }
  int64_t n_rep = num_heads / num_kv_heads;
  k = repeat_kv(k, n_rep);
  v = repeat_kv(v, n_rep);

  auto context = scaled_attention(q, k, v, mask, 1.0 / std::sqrt(static_cast<double>(head_dim)));  // (B, n_h, T, d_h)
  return o_proj(context.transpose(1, 2).reshape({batch, length, num_heads * head_dim}));
}

LlamaMlpImpl::LlamaMlpImpl(const ModelConfig& config, const torch::TensorOptions& options) {
  int64_t d = config.hidden_size, ff = config.intermediate_size;
  gate_proj = register_module("gate_proj", Projection(d, ff, config.mlp_bias, options));
  up_proj = register_module("up_proj", Projection(d, ff, config.mlp_bias, options));
  down_proj = register_module("down_proj", Projection(ff, d, config.mlp_bias, options));
}

torch::Tensor LlamaMlpImpl::forward(const torch::Tensor& x) {
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const ModelConfig& config, const torch::TensorOptions& options) {
  self_attn = register_module("self_attn", LlamaAttention(config, options));
  mlp = register_module("mlp", LlamaMlp(config, options));
  input_layernorm = register_module("input_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RmsNorm(config.hidden_size, config.rms_norm_eps, options));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& x, const LlamaPass& pass, ModelHooks* hooks,
                                             int64_t index) {
  AttentionPrefix* prefix = hooks ? hooks->attention_prefix.get() : nullptr;
  auto normed = input_layernorm(x);
  auto h = self_attn->forward(normed, pass.cos, pass.sin, pass.mask, prefix, index);
  h = tap_sublayer(hooks, index, Sublayer::attention, normed, x, h);
  auto y = x + h;
  normed = post_attention_layernorm(y);
  h = mlp(normed);
  h = tap_sublayer(hooks, index, Sublayer::feed_forward, normed, y, h);
  return y + h;
}

LlamaBackboneImpl::LlamaBackboneImpl(const ModelConfig& config, const torch::TensorOptions& options) {
  embed_tokens = register_module("embed_tokens", TokenEmbedding(config.vocab_size, config.hidden_size, options));
  auto list = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layers.push_back(LlamaDecoderLayer(config, options));
    list->push_back(layers.back());
  }
  norm = register_module("norm", RmsNorm(config.hidden_size, config.rms_norm_eps, options));
}

LlamaForCausalLM::LlamaForCausalLM(const ModelConfig& config, const torch::TensorOptions& options)
    : CausalLM(config), rotary_(config.head_dim, config.rope_theta) {
  model = register_module("model", LlamaBackbone(config, options));
  if (config.tie_word_embeddings) {
    // Not registered: the head is the embedding matrix, which the parameter list holds once.
    lm_head = Projection(config.hidden_size, config.vocab_size, false, options.device(torch::kMeta));
    lm_head->weight = model->embed_tokens->weight;
  } else {
    lm_head = register_module("lm_head", Projection(config.hidden_size, config.vocab_size, false, options));
  }
}

torch::Tensor LlamaForCausalLM::hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  if (hooks.stack) return hooks.stack->hidden_states(*this, input_ids, attention_mask);
  int64_t batch = input_ids.size(0);
  auto x = model->embed_tokens(input_ids);  // (B, T, d)
  auto mask = attention_mask;
  int64_t virtual_tokens = 0;
  if (hooks.input_prefix) {
    auto prefix = hooks.input_prefix->prefix(batch).to(x.scalar_type());  // (B, l, d)
    virtual_tokens = prefix.size(1);
    x = torch::cat({prefix, x}, 1);
    mask = torch::cat({torch::ones({batch, virtual_tokens}, mask.options()), mask}, 1);
  }
  int64_t prefix_length = hooks.attention_prefix ? hooks.attention_prefix->length() : 0;
  auto pass = make_pass(config_, rotary_, x, mask, virtual_tokens, prefix_length);
  for (size_t i = 0; i < model->layers.size(); ++i) {
    x = run_block(
        x, [this, pass, i](const torch::Tensor& h) { return model->layers[i]->forward(h, pass, &hooks, int64_t(i)); });
  }
  x = model->norm(x);
  if (virtual_tokens > 0) x = x.narrow(1, virtual_tokens, x.size(1) - virtual_tokens);
  return x;
}

BackboneStates LlamaForCausalLM::backbone_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                                 const std::vector<int64_t>& blocks) {
  BackboneStates states;
  auto x = model->embed_tokens(input_ids);
  states.embeddings = x;
  if (blocks.empty()) return states;
  auto pass = make_pass(config_, rotary_, x, attention_mask, 0, 0);
  int64_t last = *std::max_element(blocks.begin(), blocks.end());
  std::vector<torch::Tensor> outputs;
  for (int64_t i = 0; i <= last; ++i) {  // the blocks after the last one asked for are not needed
    x = model->layers[static_cast<size_t>(i)]->forward(x, pass, nullptr, i);
    outputs.push_back(x);
  }
  for (int64_t block : blocks) states.blocks.push_back(outputs[static_cast<size_t>(block)]);
  return states;
}

LlamaStackImpl::LlamaStackImpl(const ModelConfig& config, const torch::TensorOptions& options)
    : rotary_(config.head_dim, config.rope_theta) {
  auto list = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layers.push_back(LlamaDecoderLayer(config, options));
    list->push_back(layers.back());
  }
  norm = register_module("norm", RmsNorm(config.hidden_size, config.rms_norm_eps, options));
}

torch::Tensor LlamaStackImpl::forward(const torch::Tensor& x, const torch::Tensor& attention_mask,
                                      const BlockInput& before_block) {
  auto [cos, sin] = rotary_.get(x.size(1), x.device(), x.scalar_type());
  LlamaPass pass{cos, sin, attention_mask_bias(attention_mask, 0)};
  auto s = x;
  for (size_t i = 0; i < layers.size(); ++i) {
    int64_t index = static_cast<int64_t>(i);
    s = layers[i]->forward(before_block(index, s), pass, nullptr, index);
  }
  return norm(s);
}

std::shared_ptr<BlockStack> LlamaForCausalLM::make_block_stack(const ModelConfig& config,
                                                               const torch::TensorOptions& options) const {
  return std::make_shared<LlamaStackImpl>(config, options);
}

StackLayout LlamaForCausalLM::stack_layout() const { return llama::stack_layout(config_); }

std::vector<std::string> LlamaForCausalLM::tensor_names() const { return llama::tensor_names(config_); }

std::vector<std::string> LlamaForCausalLM::default_targets(DefaultTargets which) const {
  return llama::default_targets(which);
}

}  // namespace peft
