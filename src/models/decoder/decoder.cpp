#include "models/decoder/decoder.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace peft {
namespace {

// (B, n_kv, T, d_h) -> (B, n_kv * n_rep, T, d_h): each key/value head serves n_rep query heads.
torch::Tensor repeat_kv(const torch::Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  auto sizes = x.sizes();
  return x.unsqueeze(2)
      .expand({sizes[0], sizes[1], n_rep, sizes[2], sizes[3]})
      .reshape({sizes[0], sizes[1] * n_rep, sizes[2], sizes[3]});
}

bool any_sliding(const ModelConfig& config) {
  return std::find(config.sliding_layers.begin(), config.sliding_layers.end(), true) != config.sliding_layers.end();
}

bool any_full(const ModelConfig& config) {
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    if (!config.is_sliding(i)) return true;
  }
  return false;
}

}  // namespace

RmsNormImpl::RmsNormImpl(int64_t size, double eps_, const torch::TensorOptions& options, bool unit_offset_)
    : eps(eps_), unit_offset(unit_offset_) {
  weight = register_parameter("weight", torch::empty({size}, options), /*requires_grad=*/false);
}

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  auto x32 = x.to(torch::kFloat);
  auto normalised = x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps);
  if (unit_offset) return (normalised * (1.0 + weight.to(torch::kFloat))).to(x.scalar_type());
  return weight * normalised.to(x.scalar_type());
}

DecoderPositions::DecoderPositions(const ModelConfig& config) : config_(config), full_(config.rope) {
  if (config.local_rope) sliding_.emplace(config.rope_local);
}

DecoderPass DecoderPositions::make_pass(const torch::Tensor& x, const torch::Tensor& attention_mask,
                                        int64_t prefix_length) {
  int64_t length = x.size(1);
  // Keys and values of an attention prefix count as past tokens: real positions start after them, as in HF with
  // past_key_values (the prefix itself is never rotated). Packed rows restart at 0 with each example.
  auto positions = packed_positions(attention_mask);
  // How far positions reach matters to longrope only: the packed rows' maximum costs a host read, so only there.
  int64_t span = prefix_length + length;
  if (positions.defined() && config_.rope.type == "longrope") span = positions.max().item<int64_t>() + 1;
  auto angles = [&](RotaryTables& tables) -> RotaryAngles {
    auto [cos, sin] = tables.get(prefix_length + length, span, x.device(), x.scalar_type());
    if (!positions.defined()) return {cos.narrow(0, prefix_length, length), sin.narrow(0, prefix_length, length)};
    auto flat = positions.reshape(-1);  // on the mask's device, which is x's
    return {cos.index_select(0, flat).view({positions.size(0), 1, length, -1}),
            sin.index_select(0, flat).view({positions.size(0), 1, length, -1})};
  };
  DecoderPass pass;
  pass.full = angles(full_);
  pass.sliding = sliding_ ? angles(*sliding_) : pass.full;
  if (any_full(config_)) pass.full_mask = attention_mask_bias(attention_mask, prefix_length);
  if (any_sliding(config_)) {
    pass.sliding_mask = attention_mask_bias(attention_mask, prefix_length, /*causal=*/true, config_.sliding_window);
  }
  return pass;
}

DecoderPass DecoderPositions::make_cached_pass(const torch::Tensor& x, const torch::Tensor& attention_mask,
                                               KvCache& cache, int64_t prefix_length) {
  auto queries = cache.begin_step(attention_mask, prefix_length);
  int64_t max_position = cache.max_position();
  int64_t batch = x.size(0), length = x.size(1);
  auto flat = queries.reshape(-1);
  auto angles = [&](RotaryTables& tables) -> RotaryAngles {
    // Tables for twice the positions so far, so that they are not rebuilt at every step.
    int64_t rows = std::min(std::max<int64_t>(2 * (max_position + 1), 64), config_.max_position_embeddings);
    auto [cos, sin] = tables.get(std::max(rows, max_position + 1), max_position + 1, x.device(), x.scalar_type());
    return {cos.index_select(0, flat).view({batch, 1, length, -1}),
            sin.index_select(0, flat).view({batch, 1, length, -1})};
  };
  DecoderPass pass;
  pass.full = angles(full_);
  pass.sliding = sliding_ ? angles(*sliding_) : pass.full;
  if (any_full(config_)) pass.full_mask = cache.mask(queries, 0);
  if (any_sliding(config_)) pass.sliding_mask = cache.mask(queries, config_.sliding_window);
  pass.cache = &cache;
  return pass;
}

torch::Tensor decoder_attention(torch::Tensor q, torch::Tensor k, torch::Tensor v, const DecoderPass& pass,
                                const ModelConfig& config, AttentionPrefix* prefix, int64_t layer) {
  int64_t batch = q.size(0), length = q.size(2);
  bool sliding = config.is_sliding(layer);
  const auto& angles = pass.angles(sliding);
  q = apply_rotary(q, angles.cos, angles.sin);
  k = apply_rotary(k, angles.cos, angles.sin);
  if (prefix && (!pass.cache || pass.cache->empty())) {
    // Prefix keys join after the rotation: they carry no position. A cache holds them from its prefill on.
    auto [prefix_k, prefix_v] = prefix->prefix(layer, batch);  // (B, n_kv, l, d_h)
    k = torch::cat({prefix_k.to(k.scalar_type()), k}, 2);
    v = torch::cat({prefix_v.to(v.scalar_type()), v}, 2);
  }
  if (pass.cache) std::tie(k, v) = pass.cache->append(layer, k, v);
  int64_t n_rep = config.num_attention_heads / config.num_key_value_heads;
  k = repeat_kv(k, n_rep);
  v = repeat_kv(v, n_rep);
  double scale =
      config.attention_scale > 0 ? config.attention_scale : 1.0 / std::sqrt(static_cast<double>(config.head_dim));
  auto context = scaled_attention(q, k, v, pass.mask(sliding), scale, config.attention_softcap);  // (B, n_h, T, d_h)
  return context.transpose(1, 2).reshape({batch, length, config.num_attention_heads * config.head_dim});
}

DecoderAttentionImpl::DecoderAttentionImpl(const ModelConfig& config_, const torch::TensorOptions& options,
                                           bool unit_offset_norms)
    : config(config_) {
  int64_t d = config.hidden_size, d_h = config.head_dim;
  int64_t heads = config.num_attention_heads, kv_heads = config.num_key_value_heads;
  q_proj = register_module("q_proj", Projection(d, heads * d_h, config.attention_bias, options));
  k_proj = register_module("k_proj", Projection(d, kv_heads * d_h, config.attention_bias, options));
  v_proj = register_module("v_proj", Projection(d, kv_heads * d_h, config.attention_bias, options));
  o_proj = register_module("o_proj", Projection(heads * d_h, d, config.output_bias, options));
  if (config.qk_norm) {
    q_norm = register_module("q_norm", RmsNorm(d_h, config.rms_norm_eps, options, unit_offset_norms));
    k_norm = register_module("k_norm", RmsNorm(d_h, config.rms_norm_eps, options, unit_offset_norms));
  }
}

torch::Tensor DecoderAttentionImpl::forward(const torch::Tensor& x, const DecoderPass& pass, AttentionPrefix* prefix,
                                            int64_t layer) {
  int64_t batch = x.size(0), length = x.size(1), d_h = config.head_dim;
  auto q = q_proj(x).view({batch, length, -1, d_h});  // (B, T, n_h, d_h)
  auto k = k_proj(x).view({batch, length, -1, d_h});
  auto v = v_proj(x).view({batch, length, -1, d_h});
  if (q_norm) q = q_norm(q), k = k_norm(k);
  auto context =
      decoder_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), pass, config, prefix, layer);
  return o_proj(context);
}

GatedMlpImpl::GatedMlpImpl(const ModelConfig& config, const torch::TensorOptions& options)
    : activation(config.hidden_act) {
  int64_t d = config.hidden_size, ff = config.intermediate_size;
  gate_proj = register_module("gate_proj", Projection(d, ff, config.mlp_bias, options));
  up_proj = register_module("up_proj", Projection(d, ff, config.mlp_bias, options));
  down_proj = register_module("down_proj", Projection(ff, d, config.mlp_bias, options));
}

torch::Tensor GatedMlpImpl::forward(const torch::Tensor& x) {
  auto gate = gate_proj(x);
  if (activation == "silu") {
    gate = torch::silu(gate);
  } else {
    gate = torch::gelu(gate, activation == "gelu_pytorch_tanh" ? "tanh" : "none");
  }
  return down_proj(gate * up_proj(x));
}

torch::Tensor pre_norm_block(const torch::Tensor& x, RmsNorm& attention_norm, const SubLayer& attention,
                             RmsNorm& mlp_norm, const SubLayer& mlp, ModelHooks* hooks, int64_t index) {
  auto normed = attention_norm(x);
  auto h = tap_sublayer(hooks, index, Sublayer::attention, normed, x, attention(normed));
  auto y = x + h;
  normed = mlp_norm(y);
  h = tap_sublayer(hooks, index, Sublayer::feed_forward, normed, y, mlp(normed));
  return y + h;
}

DecoderBackboneImpl::DecoderBackboneImpl(const ModelConfig& config, const torch::TensorOptions& options,
                                         const DecoderLayerFactory& make_layer, bool unit_offset_norm) {
  embed_tokens = register_module("embed_tokens", TokenEmbedding(config.vocab_size, config.hidden_size, options));
  auto list = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layers.push_back(make_layer(config, i, options));
    list->push_back(layers.back());
  }
  norm = register_module("norm", RmsNorm(config.hidden_size, config.rms_norm_eps, options, unit_offset_norm));
}

DecoderForCausalLM::DecoderForCausalLM(const ModelConfig& config, const torch::TensorOptions& options,
                                       const DecoderLayerFactory& make_layer, Options family)
    : CausalLM(config), family_(family), positions_(config) {
  model = register_module("model", DecoderBackbone(config, options, make_layer, family.unit_offset_norm));
  if (config.tie_word_embeddings) {
    // Not registered: the head is the embedding matrix, which the parameter list holds once.
    lm_head = Projection(config.hidden_size, config.vocab_size, false, options.device(torch::kMeta));
    lm_head->weight = model->embed_tokens->weight;
  } else {
    lm_head = register_module("lm_head", Projection(config.hidden_size, config.vocab_size, false, options));
  }
}

torch::Tensor DecoderForCausalLM::scale_inputs(const torch::Tensor& x) const {
  // The factor in the model's dtype, as HF rounds it.
  if (!family_.scale_embeddings) return x;
  return x * torch::scalar_tensor(std::sqrt(static_cast<double>(config_.hidden_size)), x.options());
}

torch::Tensor DecoderForCausalLM::hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  if (hooks.stack) return hooks.stack->hidden_states(*this, input_ids, attention_mask);
  auto [x, mask, types, virtual_tokens] = prepend_input_prefix(model->embed_tokens(input_ids), attention_mask);
  x = scale_inputs(x);  // virtual tokens included: HF PEFT passes them to the model as inputs_embeds
  int64_t prefix_length = hooks.attention_prefix ? hooks.attention_prefix->length() : 0;
  check_sequence_length(x.size(1), virtual_tokens, prefix_length);
  auto pass = positions_.make_pass(x, mask, prefix_length);
  for (size_t i = 0; i < model->layers.size(); ++i) {
    x = run_block(
        x, [this, pass, i](const torch::Tensor& h) { return model->layers[i]->forward(h, pass, &hooks, int64_t(i)); });
  }
  return drop_virtual_tokens(model->norm(x), virtual_tokens);
}

torch::Tensor DecoderForCausalLM::decode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                         KvCache& cache) {
  check(!hooks.stack, "a KV cache cannot serve a model whose block stack a method replaces (Ladder Side-Tuning)");
  auto x = model->embed_tokens(input_ids);
  auto mask = attention_mask;
  int64_t virtual_tokens = 0, prefix_length = 0;
  if (cache.empty()) {  // the prefill: the input prefix and the attention prefix enter the cache here, once
    auto prefixed = prepend_input_prefix(x, attention_mask);
    x = prefixed.x, mask = prefixed.attention_mask, virtual_tokens = prefixed.virtual_tokens;
    prefix_length = hooks.attention_prefix ? hooks.attention_prefix->length() : 0;
    check_sequence_length(x.size(1), virtual_tokens, prefix_length);
  } else {
    check_sequence_length(cache.max_position() + 1 + x.size(1), 0, 0);
  }
  x = scale_inputs(x);
  auto pass = positions_.make_cached_pass(x, mask, cache, prefix_length);
  for (size_t i = 0; i < model->layers.size(); ++i) x = model->layers[i]->forward(x, pass, &hooks, int64_t(i));
  cache.end_step();
  return drop_virtual_tokens(model->norm(x), virtual_tokens);
}

BackboneStates DecoderForCausalLM::run_backbone(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                                const std::vector<int64_t>& blocks) {
  BackboneStates states;
  auto x = scale_inputs(model->embed_tokens(input_ids));
  states.embeddings = x;
  if (blocks.empty()) return states;
  check_sequence_length(x.size(1), 0, 0);
  auto pass = positions_.make_pass(x, attention_mask, 0);
  int64_t last = *std::max_element(blocks.begin(), blocks.end());
  std::vector<torch::Tensor> outputs;
  for (int64_t i = 0; i <= last; ++i) {  // the blocks after the last one asked for are not needed
    x = model->layers[static_cast<size_t>(i)]->forward(x, pass, nullptr, i);
    outputs.push_back(x);
  }
  for (int64_t block : blocks) states.blocks.push_back(outputs[static_cast<size_t>(block)]);
  return states;
}

}  // namespace peft
