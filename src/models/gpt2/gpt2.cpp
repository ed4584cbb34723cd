#include "models/gpt2/gpt2.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/gpt2/names.h"

namespace peft {
namespace {

torch::Tensor activate(const torch::Tensor& x, const std::string& activation) {
  if (activation == "relu") return torch::relu(x);
  if (activation == "gelu") return torch::gelu(x);
  return torch::gelu(x, "tanh");  // gelu_new and gelu_pytorch_tanh: the tanh approximation
}

}  // namespace

Gpt2AttentionImpl::Gpt2AttentionImpl(const ModelConfig& config, const torch::TensorOptions& options)
    : num_heads(config.num_attention_heads),
      head_dim(config.head_dim),
      inverse_layer_scaling(config.raw.is_object() && config.raw.value("scale_attn_by_inverse_layer_idx", false)) {
  int64_t d = config.hidden_size, inner = num_heads * head_dim;
  c_attn = register_module("c_attn", Projection(d, 3 * inner, true, options));
  c_proj = register_module("c_proj", Projection(inner, d, true, options));
}

torch::Tensor Gpt2AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, AttentionPrefix* prefix,
                                         int64_t layer, KvCache* cache) {
  int64_t batch = x.size(0), length = x.size(1), inner = num_heads * head_dim;
  auto qkv = c_attn(x).split(inner, -1);
  auto heads = [&](const torch::Tensor& t) { return t.view({batch, length, num_heads, head_dim}).transpose(1, 2); };
  auto q = heads(qkv[0]), k = heads(qkv[1]), v = heads(qkv[2]);  // (B, n_h, T, d_h)
  if (prefix && (!cache || cache->empty())) {                    // a cache holds the prefix from its prefill on
    auto [prefix_k, prefix_v] = prefix->prefix(layer, batch);    // (B, n_h, l, d_h)
    k = torch::cat({prefix_k.to(k.scalar_type()), k}, 2);
    v = torch::cat({prefix_v.to(v.scalar_type()), v}, 2);
  }
  if (cache) std::tie(k, v) = cache->append(layer, k, v);
  double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  if (inverse_layer_scaling) scale /= static_cast<double>(layer + 1);
  auto context = scaled_attention(q, k, v, mask, scale);  // (B, n_h, T, d_h)
  return c_proj(context.transpose(1, 2).reshape({batch, length, inner}));
}

Gpt2MlpImpl::Gpt2MlpImpl(const ModelConfig& config, const torch::TensorOptions& options)
    : activation(config.hidden_act) {
  int64_t d = config.hidden_size, ff = config.intermediate_size;
  c_fc = register_module("c_fc", Projection(d, ff, true, options));
  c_proj = register_module("c_proj", Projection(ff, d, true, options));
}

torch::Tensor Gpt2MlpImpl::forward(const torch::Tensor& x) { return c_proj(activate(c_fc(x), activation)); }

Gpt2BlockImpl::Gpt2BlockImpl(const ModelConfig& config, const torch::TensorOptions& options) {
  ln_1 = register_module("ln_1", LayerNorm(config.hidden_size, config.layer_norm_eps, options));
  attn = register_module("attn", Gpt2Attention(config, options));
  ln_2 = register_module("ln_2", LayerNorm(config.hidden_size, config.layer_norm_eps, options));
  mlp = register_module("mlp", Gpt2Mlp(config, options));
}

torch::Tensor Gpt2BlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, ModelHooks* hooks,
                                     int64_t index, KvCache* cache) {
  AttentionPrefix* prefix = hooks ? hooks->attention_prefix.get() : nullptr;
  auto normed = ln_1(x);
  auto h = attn->forward(normed, mask, prefix, index, cache);
  h = tap_sublayer(hooks, index, Sublayer::attention, normed, x, h);
  auto y = x + h;
  normed = ln_2(y);
  h = mlp(normed);
  h = tap_sublayer(hooks, index, Sublayer::feed_forward, normed, y, h);
  return y + h;
}

Gpt2ModelImpl::Gpt2ModelImpl(const ModelConfig& config, const torch::TensorOptions& options) {
  wte = register_module("wte", TokenEmbedding(config.vocab_size, config.hidden_size, options));
  wpe = register_module("wpe", TokenEmbedding(config.max_position_embeddings, config.hidden_size, options));
  auto list = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    h.push_back(Gpt2Block(config, options));
    list->push_back(h.back());
  }
  ln_f = register_module("ln_f", LayerNorm(config.hidden_size, config.layer_norm_eps, options));
}

Gpt2StackImpl::Gpt2StackImpl(const ModelConfig& config, const torch::TensorOptions& options) {
  auto list = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    h.push_back(Gpt2Block(config, options));
    list->push_back(h.back());
  }
  ln_f = register_module("ln_f", LayerNorm(config.hidden_size, config.layer_norm_eps, options));
}

torch::Tensor Gpt2StackImpl::forward(const torch::Tensor& x, const torch::Tensor& attention_mask,
                                     const BlockInput& before_block) {
  auto mask = attention_mask_bias(attention_mask, 0);
  auto s = x;
  for (size_t i = 0; i < h.size(); ++i) {
    int64_t index = static_cast<int64_t>(i);
    s = h[i]->forward(before_block(index, s), mask, nullptr, index);
  }
  return ln_f(s);
}

Gpt2LMHeadModel::Gpt2LMHeadModel(const ModelConfig& config, const torch::TensorOptions& options) : CausalLM(config) {
  transformer = register_module("transformer", Gpt2Model(config, options));
  if (config.tie_word_embeddings) {
    // Not registered: the head is the embedding matrix, which the parameter list holds once.
    lm_head = Projection(config.hidden_size, config.vocab_size, false, options.device(torch::kMeta));
    lm_head->weight = transformer->wte->weight;
  } else {
    lm_head = register_module("lm_head", Projection(config.hidden_size, config.vocab_size, false, options));
  }
}

torch::Tensor Gpt2LMHeadModel::add_positions(const torch::Tensor& embeddings, int64_t first) {
  // The same positions for every row (HF's default position_ids; right padding leaves real tokens in place).
  auto positions =
      torch::arange(first, first + embeddings.size(1), torch::dtype(torch::kLong).device(embeddings.device()));
  return embeddings + transformer->wpe(positions).unsqueeze(0);
}

torch::Tensor Gpt2LMHeadModel::hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  if (hooks.stack) return hooks.stack->hidden_states(*this, input_ids, attention_mask);
  // Virtual tokens take positions 0..l-1 and receive position embeddings like real tokens.
  auto [x, mask, types, virtual_tokens] = prepend_input_prefix(transformer->wte(input_ids), attention_mask);
  // Keys and values of an attention prefix count as past tokens: positions start after them, as in HF with
  // past_key_values.
  int64_t prefix_length = hooks.attention_prefix ? hooks.attention_prefix->length() : 0;
  check_sequence_length(x.size(1), virtual_tokens, prefix_length, "n_positions");
  auto packed = packed_positions(mask);
  // Packed rows: each example's positions start at 0.
  x = packed.defined() ? x + transformer->wpe(packed) : add_positions(x, prefix_length);
  auto bias = attention_mask_bias(mask, prefix_length);
  for (size_t i = 0; i < transformer->h.size(); ++i) {
    x = run_block(
        x, [this, bias, i](const torch::Tensor& h) { return transformer->h[i]->forward(h, bias, &hooks, int64_t(i)); });
  }
  return drop_virtual_tokens(transformer->ln_f(x), virtual_tokens);
}

torch::Tensor Gpt2LMHeadModel::decode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                      KvCache& cache) {
  check(!hooks.stack, "a KV cache cannot serve a model whose block stack a method replaces (Ladder Side-Tuning)");
  auto x = transformer->wte(input_ids);
  auto mask = attention_mask;
  int64_t virtual_tokens = 0, prefix_length = 0;
  if (cache.empty()) {  // the prefill: the input prefix and the attention prefix enter the cache here, once
    auto prefixed = prepend_input_prefix(x, attention_mask);
    x = prefixed.x, mask = prefixed.attention_mask, virtual_tokens = prefixed.virtual_tokens;
    prefix_length = hooks.attention_prefix ? hooks.attention_prefix->length() : 0;
    check_sequence_length(x.size(1), virtual_tokens, prefix_length, "n_positions");
  } else {
    check_sequence_length(cache.max_position() + 1 + x.size(1), 0, 0, "n_positions");
  }
  auto positions = cache.begin_step(mask, prefix_length);
  x = x + transformer->wpe(positions);
  auto bias = cache.mask(positions, 0);
  for (size_t i = 0; i < transformer->h.size(); ++i)
    x = transformer->h[i]->forward(x, bias, &hooks, int64_t(i), &cache);
  cache.end_step();
  return drop_virtual_tokens(transformer->ln_f(x), virtual_tokens);
}

BackboneStates Gpt2LMHeadModel::backbone_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                                const std::vector<int64_t>& blocks) {
  check_sequence_length(input_ids.size(1), 0, 0, "n_positions");
  BackboneStates states;
  auto x = add_positions(transformer->wte(input_ids), 0);
  states.embeddings = x;
  if (blocks.empty()) return states;
  auto bias = attention_mask_bias(attention_mask, 0);
  int64_t last = *std::max_element(blocks.begin(), blocks.end());
  std::vector<torch::Tensor> outputs;
  for (int64_t i = 0; i <= last; ++i) {  // the blocks after the last one asked for are not needed
    x = transformer->h[static_cast<size_t>(i)]->forward(x, bias, nullptr, i);
    outputs.push_back(x);
  }
  for (int64_t block : blocks) states.blocks.push_back(outputs[static_cast<size_t>(block)]);
  return states;
}

std::shared_ptr<BlockStack> Gpt2LMHeadModel::make_block_stack(const ModelConfig& config,
                                                              const torch::TensorOptions& options) const {
  return std::make_shared<Gpt2StackImpl>(config, options);
}

StackLayout Gpt2LMHeadModel::stack_layout() const { return gpt2::stack_layout(); }
bool Gpt2LMHeadModel::stored_transposed(const std::string& name) const { return gpt2::stored_transposed(name); }
std::string Gpt2LMHeadModel::optional_name_prefix() const { return gpt2::kBasePrefix; }
bool Gpt2LMHeadModel::expected_unused(const std::string& name) const {
  return gpt2::expected_unused(name) && !(name == "lm_head.weight" && !config_.tie_word_embeddings);
}

}  // namespace peft
