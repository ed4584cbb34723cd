// The GPT-2 family's registry entry (GPT2LMHeadModel): its config.json keys (n_embd, n_layer, ...) mapped onto
// ModelConfig. GPT-2 always has biases and ties its head to the token embeddings unless the config says otherwise.
#include <algorithm>

#include "core/error.h"
#include "core/strings.h"
#include "models/config_keys.h"
#include "models/gpt2/gpt2.h"
#include "models/gpt2/names.h"
#include "models/registry.h"

namespace peft {
namespace {

void read_gpt2_config(const nlohmann::json& json, const std::string& file, ModelConfig& config) {
  read_key(json, file, "vocab_size", config.vocab_size, true);
  read_key(json, file, "n_embd", config.hidden_size, true);
  read_key(json, file, "n_layer", config.num_hidden_layers, true);
  read_key(json, file, "n_head", config.num_attention_heads, true);
  config.num_key_value_heads = config.num_attention_heads;
  config.intermediate_size = 4 * config.hidden_size;  // n_inner: null means 4 * n_embd
  read_key(json, file, "n_inner", config.intermediate_size);
  config.max_position_embeddings = 1024;
  read_key(json, file, "n_positions", config.max_position_embeddings);
  read_key(json, file, "layer_norm_epsilon", config.layer_norm_eps);
  check(config.layer_norm_eps > 0, file + ": layer_norm_epsilon must be positive");
  config.hidden_act = "gelu_new";
  read_key(json, file, "activation_function", config.hidden_act);
  const std::vector<std::string> activations = {"gelu_new", "gelu_pytorch_tanh", "gelu", "relu"};
  check(std::find(activations.begin(), activations.end(), config.hidden_act) != activations.end(),
        file + ": unsupported activation_function '" + config.hidden_act + "' (supported: " + join(activations, ", ") +
            ")");
  config.tie_word_embeddings = true;
  read_key(json, file, "tie_word_embeddings", config.tie_word_embeddings);
  read_key(json, file, "torch_dtype", config.torch_dtype);
  config.bos_token_id = read_token_id(json, file, "bos_token_id", 50256);
  config.eos_token_id = read_token_id(json, file, "eos_token_id", 50256);
  config.attention_bias = config.output_bias = config.mlp_bias = true;
  bool scaled = true;
  read_key(json, file, "scale_attn_weights", scaled);
  check(scaled, file + ": scale_attn_weights false is not supported");
}

}  // namespace

ModelFamily gpt2_family() {
  ModelFamily family;
  family.name = "gpt2";
  family.architectures = {"GPT2LMHeadModel"};
  family.read_config = read_gpt2_config;
  family.make = [](const ModelConfig& config, const torch::TensorOptions& options, int64_t) {
    return std::make_shared<Gpt2LMHeadModel>(config, options);
  };
  family.tensor_names = gpt2::tensor_names;
  family.default_targets = gpt2::default_targets;
  return family;  // every projection has its bias already: nothing to declare on merge
}

}  // namespace peft
