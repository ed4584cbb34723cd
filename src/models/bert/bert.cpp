#include "models/bert/bert.h"

#include <cmath>

#include "core/error.h"
#include "models/bert/names.h"

namespace peft {

BertEmbeddingsImpl::BertEmbeddingsImpl(const ModelConfig& c, const torch::TensorOptions& options) {
  word_embeddings = register_module("word_embeddings", TokenEmbedding(c.vocab_size, c.hidden_size, options));
  position_embeddings =
      register_module("position_embeddings", TokenEmbedding(c.max_position_embeddings, c.hidden_size, options));
  token_type_embeddings =
      register_module("token_type_embeddings", TokenEmbedding(c.type_vocab_size, c.hidden_size, options));
  norm = register_module("LayerNorm", LayerNorm(c.hidden_size, c.layer_norm_eps, options));
}

BertSelfAttentionImpl::BertSelfAttentionImpl(const ModelConfig& c, const torch::TensorOptions& options) {
  query = register_module("query", Projection(c.hidden_size, c.hidden_size, true, options));
  key = register_module("key", Projection(c.hidden_size, c.hidden_size, true, options));
  value = register_module("value", Projection(c.hidden_size, c.hidden_size, true, options));
}

BertSublayerOutputImpl::BertSublayerOutputImpl(int64_t in, const ModelConfig& c, const torch::TensorOptions& options) {
  dense = register_module("dense", Projection(in, c.hidden_size, true, options));
  norm = register_module("LayerNorm", LayerNorm(c.hidden_size, c.layer_norm_eps, options));
}

BertAttentionImpl::BertAttentionImpl(const ModelConfig& c, const torch::TensorOptions& options) {
  self_attention = register_module("self", BertSelfAttention(c, options));
  output = register_module("output", BertSublayerOutput(c.hidden_size, c, options));
}

BertIntermediateImpl::BertIntermediateImpl(const ModelConfig& c, const torch::TensorOptions& options) {
  dense = register_module("dense", Projection(c.hidden_size, c.intermediate_size, true, options));
}

BertLayerImpl::BertLayerImpl(const ModelConfig& c, const torch::TensorOptions& options)
    : num_heads(c.num_attention_heads), head_dim(c.head_dim) {
  attention = register_module("attention", BertAttention(c, options));
  intermediate = register_module("intermediate", BertIntermediate(c, options));
  output = register_module("output", BertSublayerOutput(c.intermediate_size, c, options));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask, ModelHooks* hooks,
                                     int64_t index) {
  int64_t batch = x.size(0), length = x.size(1);
  auto heads = [&](const torch::Tensor& t) { return t.view({batch, length, num_heads, head_dim}).transpose(1, 2); };
  auto& self = attention->self_attention;
  auto q = heads(self->query(x)), k = heads(self->key(x)), v = heads(self->value(x));
  if (hooks && hooks->attention_prefix) {
    auto [prefix_k, prefix_v] = hooks->attention_prefix->prefix(index, batch);  // (B, n_h, l, d_h)
    k = torch::cat({prefix_k.to(k.scalar_type()), k}, 2);
    v = torch::cat({prefix_v.to(v.scalar_type()), v}, 2);
  }
  auto context = scaled_attention(q, k, v, mask, 1.0 / std::sqrt(static_cast<double>(head_dim)));
  // Post-LN: the sub-layer taps see the sub-layer's input (already normalised by the previous LayerNorm) and
  // change its output before the residual add.
  auto h = attention->output->dense(context.transpose(1, 2).reshape({batch, length, num_heads * head_dim}));
  h = tap_sublayer(hooks, index, Sublayer::attention, x, x, h);
  auto y = attention->output->norm(h + x);
  h = output->dense(torch::gelu(intermediate->dense(y)));
  h = tap_sublayer(hooks, index, Sublayer::feed_forward, y, y, h);
  return output->norm(h + y);
}

DenseHeadImpl::DenseHeadImpl(int64_t hidden, int64_t outputs, const torch::TensorOptions& options) {
  dense = register_module("dense", Projection(hidden, hidden, true, options));
  if (outputs > 0) out_proj = register_module("out_proj", Projection(hidden, outputs, true, options));
}

BertModelImpl::BertModelImpl(const ModelConfig& c, const torch::TensorOptions& options) {
  embeddings = register_module("embeddings", BertEmbeddings(c, options));
  auto encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
  auto list = encoder->register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers.push_back(BertLayer(c, options));
    list->push_back(layers.back());
  }
  if (!bert::is_roberta(c)) pooler = register_module("pooler", DenseHead(c.hidden_size, 0, options));
}

BertForSequenceClassification::BertForSequenceClassification(const ModelConfig& config, int64_t num_labels,
                                                             const torch::TensorOptions& options)
    : SequenceClassifier(config, num_labels), roberta_(bert::is_roberta(config)), base_(bert::base_prefix(config)) {
  check(num_labels >= 2, "a sequence classifier needs at least 2 labels, got " + std::to_string(num_labels));
  encoder = register_module(base_.substr(0, base_.size() - 1), BertModel(config, options));
  if (roberta_) {
    roberta_head = register_module("classifier", DenseHead(config.hidden_size, num_labels, options));
  } else {
    classifier = register_module("classifier", Projection(config.hidden_size, num_labels, true, options));
  }
  // HF's _init_weights for a head (and a pooler) the checkpoint does not have.
  double range = config.raw.is_object() ? config.raw.value("initializer_range", 0.02) : 0.02;
  torch::NoGradGuard no_grad;
  for (auto& item : named_parameters()) {
    if (!may_be_absent(item.key())) continue;
    if (item.value().dim() == 2) {
      item.value().normal_(0.0, range);
    } else {
      item.value().zero_();
    }
  }
}

torch::Tensor BertForSequenceClassification::classify(const torch::Tensor& input_ids,
                                                      const torch::Tensor& attention_mask,
                                                      const torch::Tensor& token_type_ids) {
  auto& e = encoder->embeddings;
  // Virtual tokens before the text, token type 0, counted in the positions (as PEFT passes them to HF).
  auto [x, mask, types, virtual_tokens] =
      prepend_input_prefix(e->word_embeddings(input_ids), attention_mask,
                           token_type_ids.defined() ? token_type_ids : torch::zeros_like(input_ids));
  int64_t length = x.size(1);
  // Keys and values of an attention prefix count as past tokens: positions start after them, as in HF with
  // past_key_values.
  int64_t prefix_length = hooks.attention_prefix ? hooks.attention_prefix->length() : 0;
  torch::Tensor positions;
  if (roberta_) {
    // create_position_ids_from_input_ids: padding_idx + running count of real tokens; pads get padding_idx.
    int64_t pad = config_.pad_token_id;
    auto real = mask.to(torch::kLong);
    positions = (real.cumsum(1) + prefix_length) * real + pad;
  } else {
    positions = torch::arange(prefix_length, prefix_length + length, torch::dtype(torch::kLong).device(x.device()))
                    .unsqueeze(0);
  }
  // The longest row is all real tokens, so its last position is the batch's highest: checked from sizes, with no
  // device round trip. RoBERTa's positions start at padding_idx + 1.
  int64_t offset = roberta_ ? config_.pad_token_id + 1 : 0;
  check(prefix_length + length + offset <= config_.max_position_embeddings,
        "a sequence of " + std::to_string(length) + " tokens exceeds the model's max_position_embeddings " +
            std::to_string(config_.max_position_embeddings - offset));
  x = e->norm(x + e->position_embeddings(positions) + e->token_type_embeddings(types));
  auto bias = attention_mask_bias(mask, prefix_length, /*causal=*/false);
  for (size_t i = 0; i < encoder->layers.size(); ++i) {
    x = run_block(x, [this, bias, i](const torch::Tensor& h) {
      return encoder->layers[i]->forward(h, bias, &hooks, int64_t(i));
    });
  }
  auto first = x.select(1, 0);  // (B, d): [CLS] / <s>, or the first virtual token under prompt tuning
  if (roberta_) return roberta_head->out_proj(torch::tanh(roberta_head->dense(first)));
  return classifier(torch::tanh(encoder->pooler->dense(first)));
}

bool BertForSequenceClassification::is_output_head(const std::string& module_path) const {
  return module_path == "classifier" || module_path == "classifier.dense" || module_path == "classifier.out_proj";
}

std::string BertForSequenceClassification::optional_name_prefix() const { return base_; }

bool BertForSequenceClassification::expected_unused(const std::string& name) const {
  return bert::expected_unused(name) &&
         !(!roberta_ && (name == base_ + "pooler.dense.weight" || name == base_ + "pooler.dense.bias"));
}

bool BertForSequenceClassification::may_be_absent(const std::string& name) const {
  return starts_with(name, "classifier.") || starts_with(name, base_ + "pooler.");
}

}  // namespace peft
