#include "io/hf_config.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/strings.h"

namespace peft {
namespace {

// Architectures of the Llama family: same block, differing only in config defaults and biases.
const std::vector<std::string> kSupportedArchitectures = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};

template <typename T>
void read_key(const nlohmann::json& json, const std::string& file, const char* key, T& value, bool required) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) {
    check(!required, file + ": missing key '" + key + "'");
    return;
  }
  try {
    value = it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(file + ": key '" + key + "' has the wrong type (" + it->dump() + ")");
  }
}

// eos_token_id may be a list (Llama 3); the first entry is the one generation stops on.
int64_t read_token_id(const nlohmann::json& json, const std::string& file, const char* key, int64_t fallback) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) return fallback;
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) return (*it)[0].get<int64_t>();
  check(it->is_number_integer(), file + ": key '" + key + "' must be an integer");
  return it->get<int64_t>();
}

}  // namespace

ModelConfig load_model_config(const std::string& directory) {
  namespace fs = std::filesystem;
  check(fs::is_directory(directory), "model directory not found: " + directory);
  std::string file = (fs::path(directory) / "config.json").string();
  check(fs::exists(file), "no config.json in model directory " + directory);
  std::ifstream in(file);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(file + ": invalid JSON: " + e.what());
  }
  check(json.is_object(), file + ": expected a JSON object");

  ModelConfig config;
  config.raw = json;
  auto architectures = json.find("architectures");
  check(architectures != json.end() && architectures->is_array() && !architectures->empty() &&
            (*architectures)[0].is_string(),
        file + ": missing 'architectures' (e.g. [\"LlamaForCausalLM\"])");
  config.architecture = (*architectures)[0].get<std::string>();
  bool supported = false;
  for (const auto& name : kSupportedArchitectures) supported |= name == config.architecture;
  check(supported, file + ": unsupported architecture '" + config.architecture +
                       "'; supported: " + join(kSupportedArchitectures, ", "));

  read_key(json, file, "model_type", config.model_type, false);
  read_key(json, file, "vocab_size", config.vocab_size, true);
  read_key(json, file, "hidden_size", config.hidden_size, true);
  read_key(json, file, "intermediate_size", config.intermediate_size, true);
  read_key(json, file, "num_hidden_layers", config.num_hidden_layers, true);
  read_key(json, file, "num_attention_heads", config.num_attention_heads, true);
  config.num_key_value_heads = config.num_attention_heads;
  read_key(json, file, "num_key_value_heads", config.num_key_value_heads, false);
  read_key(json, file, "head_dim", config.head_dim, false);
  read_key(json, file, "max_position_embeddings", config.max_position_embeddings, false);
  read_key(json, file, "rms_norm_eps", config.rms_norm_eps, false);
  read_key(json, file, "rope_theta", config.rope_theta, false);
  read_key(json, file, "hidden_act", config.hidden_act, false);
  read_key(json, file, "tie_word_embeddings", config.tie_word_embeddings, false);
  read_key(json, file, "mlp_bias", config.mlp_bias, false);
  read_key(json, file, "torch_dtype", config.torch_dtype, false);
  config.bos_token_id = read_token_id(json, file, "bos_token_id", 1);
  config.eos_token_id = read_token_id(json, file, "eos_token_id", 2);

  if (config.architecture == "Qwen2ForCausalLM") {
    // Qwen2 always has q/k/v biases and none on o_proj; its config has no attention_bias key.
    config.attention_bias = true;
    config.output_bias = false;
  } else {
    read_key(json, file, "attention_bias", config.attention_bias, false);
    config.output_bias = config.attention_bias;
  }
  if (config.architecture != "LlamaForCausalLM") config.mlp_bias = false;

  auto positive = [&](int64_t value, const char* key) {
    check(value > 0, file + ": '" + std::string(key) + "' must be positive, got " + std::to_string(value));
  };
  positive(config.vocab_size, "vocab_size");
  positive(config.hidden_size, "hidden_size");
  positive(config.intermediate_size, "intermediate_size");
  positive(config.num_hidden_layers, "num_hidden_layers");
  positive(config.num_attention_heads, "num_attention_heads");
  positive(config.num_key_value_heads, "num_key_value_heads");
  check(config.num_attention_heads % config.num_key_value_heads == 0,
        file + ": num_attention_heads (" + std::to_string(config.num_attention_heads) +
            ") must be a multiple of num_key_value_heads (" + std::to_string(config.num_key_value_heads) + ")");
  if (config.head_dim == 0) {
    check(config.hidden_size % config.num_attention_heads == 0,
          file + ": hidden_size must be divisible by num_attention_heads when head_dim is not given");
    config.head_dim = config.hidden_size / config.num_attention_heads;
  }
  check(config.head_dim % 2 == 0, file + ": head_dim must be even for rotary embeddings");
  check(config.hidden_act == "silu", file + ": unsupported hidden_act '" + config.hidden_act + "' (supported: silu)");
  check(config.rms_norm_eps > 0 && config.rope_theta > 0, file + ": rms_norm_eps and rope_theta must be positive");
  return config;
}

}  // namespace peft
