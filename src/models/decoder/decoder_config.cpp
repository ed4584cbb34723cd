#include "models/decoder/decoder_config.h"

#include "core/error.h"
#include "models/config_keys.h"

namespace peft {

void read_decoder_keys(const nlohmann::json& json, const std::string& file, ModelConfig& config,
                       bool tie_by_default) {
  read_sizes(json, file, config);
  read_key(json, file, "num_key_value_heads", config.num_key_value_heads);
  read_key(json, file, "head_dim", config.head_dim);
  read_key(json, file, "max_position_embeddings", config.max_position_embeddings);
  read_key(json, file, "rms_norm_eps", config.rms_norm_eps);
  check(config.rms_norm_eps > 0, file + ": rms_norm_eps must be positive");
  config.tie_word_embeddings = tie_by_default;
  read_key(json, file, "tie_word_embeddings", config.tie_word_embeddings);
  read_key(json, file, "torch_dtype", config.torch_dtype);
  read_key(json, file, "dtype", config.torch_dtype);  // transformers 5's name for it
  config.bos_token_id = read_token_id(json, file, "bos_token_id", 1);
  config.eos_token_id = read_token_id(json, file, "eos_token_id", 2);
  refuse_unless(json, file, "attention_dropout", 0.0, "dropout on the attention weights is not implemented");
}

void read_sliding_layers(const nlohmann::json& json, const std::string& file, ModelConfig& config,
                         const std::function<bool(int64_t layer)>& slides) {
  config.sliding_layers.assign(static_cast<size_t>(config.num_hidden_layers), false);
  if (config.sliding_window <= 0) {
    config.sliding_window = 0;
    return;
  }
  auto types = json.find("layer_types");
  if (types == json.end() || types->is_null()) {
    for (int64_t i = 0; i < config.num_hidden_layers; ++i) config.sliding_layers[static_cast<size_t>(i)] = slides(i);
    return;
  }
  check(types->is_array() && static_cast<int64_t>(types->size()) == config.num_hidden_layers,
        file + ": layer_types must list one type per layer (" + std::to_string(config.num_hidden_layers) + ")");
  for (size_t i = 0; i < types->size(); ++i) {
    const auto& type = (*types)[i];
    check(type == "full_attention" || type == "sliding_attention",
          file + ": layer_types[" + std::to_string(i) + "] is " + type.dump() +
              " (supported: \"full_attention\", \"sliding_attention\")");
    config.sliding_layers[i] = type == "sliding_attention";
  }
}

}  // namespace peft
