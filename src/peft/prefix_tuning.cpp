#include "peft/prefix_tuning.h"

#include "core/error.h"
#include "models/causal_lm.h"
#include "models/checkpointing.h"
#include "peft/adapter_io.h"
#include "peft/registration.h"

namespace peft {
namespace {

// The reparameterisation MLP (training only).
struct PrefixEncoderImpl : torch::nn::Module {
  PrefixEncoderImpl(int64_t l, int64_t d, int64_t k, int64_t width, const torch::TensorOptions& options) {
    embedding = register_parameter("embedding", torch::randn({l, d}, options));
    first = register_module("first", torch::nn::Linear(d, k));
    second = register_module("second", torch::nn::Linear(k, width));
    first->to(options.device());
    second->to(options.device());
  }
  torch::Tensor forward() { return second(torch::tanh(first(embedding))); }

  torch::Tensor embedding;
  torch::nn::Linear first{nullptr}, second{nullptr};
};
TORCH_MODULE(PrefixEncoder);

class Prefix : public AttentionPrefix {
 public:
  Prefix(std::function<torch::Tensor()> table, int64_t l, int64_t kv_heads, int64_t head_dim)
      : table_(std::move(table)), l_(l), kv_heads_(kv_heads), head_dim_(head_dim) {}

  int64_t length() const override { return l_; }

  std::pair<torch::Tensor, torch::Tensor> prefix(int64_t layer, int64_t batch_size) override {
    // A checkpointed block running again for backward needs the table with autograd, not the forward pass's.
    if (layer == 0 || !current_.defined() || recomputing_block())
      current_ = table_().view({l_, -1, kv_heads_, head_dim_});  // (l, 2L, n_kv, d_h)
    auto per_layer = [&](int64_t block) {
      return current_.select(1, block).permute({1, 0, 2}).unsqueeze(0).expand({batch_size, kv_heads_, l_, head_dim_});
    };
    auto keys = per_layer(2 * layer), values = per_layer(2 * layer + 1);
    if (layer + 1 == current_.size(1) / 2) current_ = torch::Tensor();  // the pass is over: release the graph
    return {keys, values};
  }

 private:
  std::function<torch::Tensor()> table_;
  int64_t l_, kv_heads_, head_dim_;
  torch::Tensor current_;
};

class PrefixTuning : public Method {
 public:
  explicit PrefixTuning(std::shared_ptr<const PrefixTuningOptions> options) : options_(std::move(options)) {}

  std::string name() const override { return "prefix_tuning"; }

  void attach(Model& base) override {
    Transformer& model = require_transformer(base, "prefix_tuning");
    const auto& o = *options_;
    const auto& c = model.config();
    check(!model.hooks.attention_prefix,
          "the model already has attention prefixes (two prefix methods in one composition)");
    int64_t l = o.num_virtual_tokens, d_kv = c.num_key_value_heads * c.head_dim;
    width_ = 2 * c.num_hidden_layers * d_kv;
    if (o.expected_width > 0) {
      check(o.expected_width == width_,
            "adapter_config.json: the prefix is 2 × num_layers × token_dim = " + std::to_string(o.expected_width) +
                " wide, this model needs " + std::to_string(width_) + " (was it trained for another base model?)");
    }
    auto options = torch::TensorOptions().dtype(torch::kFloat).device(model.input_embeddings().device());
    bool mlp = o.prefix_projection && o.expected_width == 0;
    check_name_free(model, "", "prefix_encoder");
    if (mlp) {
      int64_t k = o.encoder_hidden_size > 0 ? o.encoder_hidden_size : c.hidden_size;
      encoder_ = model.register_module("prefix_encoder", PrefixEncoder(l, c.hidden_size, k, width_, options));
      for (auto& parameter : encoder_->parameters()) parameter.set_requires_grad(true);
      table_ = [encoder = encoder_]() mutable { return encoder->forward(); };
    } else {
      prefix_ = model.register_parameter("prefix_encoder", torch::randn({l, width_}, options), /*requires_grad=*/true);
      table_ = [prefix = prefix_] { return prefix; };
    }
    model.hooks.attention_prefix = std::make_shared<Prefix>(table_, l, c.num_key_value_heads, c.head_dim);
    num_layers_ = c.num_hidden_layers;
    kv_heads_ = c.num_key_value_heads;
    hidden_size_ = c.hidden_size;
  }

  std::vector<std::string> targets() const override {
    return {"attention keys/values of all " + std::to_string(num_layers_) + " layers"};
  }

  std::vector<TrainableParameter> trainable_parameters() const override {
    if (!encoder_) return {{"prefix_encoder", prefix_, true}};
    std::vector<TrainableParameter> out;
    for (const auto& item : encoder_->named_parameters()) {
      out.push_back({"prefix_encoder." + item.key(), item.value(), item.value().dim() >= 2});
    }
    return out;
  }

  // The collapsed prefix: through the MLP when there is one.
  std::map<std::string, torch::Tensor> adapter_tensors() const override {
    torch::NoGradGuard no_grad;
    return {{"prompt_embeddings", table_().detach().to(torch::kCPU, torch::kFloat).contiguous()}};
  }

  void load_adapter_tensors(const std::map<std::string, torch::Tensor>& tensors) override {
    check(!encoder_, "internal: a prefix with its MLP cannot load a collapsed table");
    auto it = tensors.find("prompt_embeddings");
    check(it != tensors.end(), "adapter lacks tensor 'prompt_embeddings'");
    check(it->second.sizes() == prefix_.sizes(), "adapter tensor 'prompt_embeddings' has shape " +
                                                     c10::str(it->second.sizes()) + ", the model expects " +
                                                     c10::str(prefix_.sizes()) + " (l × 2·L·d_kv)");
    check(tensors.size() == 1, "a prefix-tuning adapter holds only 'prompt_embeddings', this one has " +
                                   std::to_string(tensors.size()) + " tensors");
    torch::NoGradGuard no_grad;
    prefix_.copy_(it->second);
  }

  nlohmann::json adapter_config(const std::string& base_model_path) const override {
    const auto& o = *options_;
    int64_t k = o.encoder_hidden_size > 0 ? o.encoder_hidden_size : hidden_size_;
    auto config = common_adapter_config(base_model_path, "PREFIX_TUNING");
    config.update({
        {"encoder_hidden_size", k},
        {"num_attention_heads", kv_heads_},  // HF views the table as (l, 2L, heads, token_dim / heads)
        {"num_layers", num_layers_},
        {"num_transformer_submodules", 1},
        {"num_virtual_tokens", o.num_virtual_tokens},
        {"prefix_projection", o.prefix_projection},  // the file holds the collapsed table either way
        {"token_dim", width_ / (2 * num_layers_)},
    });
    return config;
  }

  void merge(Model&) override {
    throw Error("prefix tuning cannot be merged into the base weights (the prefix is extra keys and values)");
  }
  bool mergeable() const override { return false; }
  int64_t per_token_weights() const override { return 0; }  // the prefix adds key/value positions instead

 private:
  std::shared_ptr<const PrefixTuningOptions> options_;
  PrefixEncoder encoder_{nullptr};
  torch::Tensor prefix_;
  std::function<torch::Tensor()> table_;
  int64_t width_ = 0, num_layers_ = 0, kv_heads_ = 0, hidden_size_ = 0;
};

}  // namespace

void PrefixTuningOptions::read(Section& section) {
  section.get("num_virtual_tokens", num_virtual_tokens);
  if (num_virtual_tokens < 1) {
    section.fail("num_virtual_tokens", "must be at least 1, got " + std::to_string(num_virtual_tokens));
  }
  section.get("prefix_projection", prefix_projection);
  if (prefix_projection) {
    section.get("encoder_hidden_size", encoder_hidden_size);
    if (encoder_hidden_size < 0) section.fail("encoder_hidden_size", "must not be negative");
  } else if (section.has("encoder_hidden_size")) {
    section.fail("encoder_hidden_size", "is only used with prefix_projection: true");
  }
}

std::shared_ptr<MethodOptions> PrefixTuningOptions::from_adapter_config(const nlohmann::json& config) {
  auto options = std::make_shared<PrefixTuningOptions>();
  options->num_virtual_tokens = positive_integer(config, "num_virtual_tokens");
  int64_t num_layers = positive_integer(config, "num_layers"), token_dim = positive_integer(config, "token_dim");
  bool fits =
      num_layers <= INT64_MAX / 2 && !__builtin_mul_overflow(2 * num_layers, token_dim, &options->expected_width);
  check(fits, "adapter_config.json: 'num_layers' " + std::to_string(num_layers) + " and 'token_dim' " +
                  std::to_string(token_dim) + " are too large");
  const auto& projection = config.contains("prefix_projection") ? config["prefix_projection"] : nlohmann::json(false);
  const auto& inference = config.contains("inference_mode") ? config["inference_mode"] : nlohmann::json(true);
  check(projection.is_boolean() && inference.is_boolean(),
        "adapter_config.json: 'prefix_projection' and 'inference_mode' must be true or false");
  options->prefix_projection = projection.get<bool>();
  check(inference.get<bool>() || !options->prefix_projection,
        "adapter_config.json: a prefix saved with its MLP (prefix_projection and inference_mode false) is not "
        "supported; only the collapsed table is");
  check_decoder_only(config);
  return options;
}

std::unique_ptr<Method> make_prefix_tuning(std::shared_ptr<const MethodOptions> options) {
  auto prefix = std::dynamic_pointer_cast<const PrefixTuningOptions>(options);
  check(prefix != nullptr, "internal: prefix tuning built from options of another method");
  return std::make_unique<PrefixTuning>(std::move(prefix));
}

}  // namespace peft
