#include "models/model_config.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json_depth.h"
#include "core/strings.h"
#include "io/bitsandbytes.h"
#include "models/config_keys.h"
#include "models/registry.h"

namespace peft {

void read_sizes(const nlohmann::json& json, const std::string& file, ModelConfig& config) {
  read_key(json, file, "vocab_size", config.vocab_size, true);
  read_key(json, file, "hidden_size", config.hidden_size, true);
  read_key(json, file, "intermediate_size", config.intermediate_size, true);
  read_key(json, file, "num_hidden_layers", config.num_hidden_layers, true);
  read_key(json, file, "num_attention_heads", config.num_attention_heads, true);
  config.num_key_value_heads = config.num_attention_heads;
}

int64_t read_token_id(const nlohmann::json& json, const std::string& file, const char* key, int64_t fallback) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) return fallback;
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) return (*it)[0].get<int64_t>();
  check(it->is_number_integer(), file + ": key '" + key + "' must be an integer");
  return it->get<int64_t>();
}

void refuse_unless(const nlohmann::json& json, const std::string& file, const char* key, const nlohmann::json& allowed,
                   const std::string& why) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null() || *it == allowed) return;
  // 0 and 0.0 are the same setting.
  if (it->is_number() && allowed.is_number() && it->get<double>() == allowed.get<double>()) return;
  throw Error(file + ": " + key + " " + it->dump() + " is not supported (" + why + ")");
}

ModelConfig load_model_config(const std::string& directory) {
  namespace fs = std::filesystem;
  check(fs::is_directory(directory), "model directory not found: " + directory);
  std::string file = (fs::path(directory) / "config.json").string();
  check(fs::exists(file), "no config.json in model directory " + directory);
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_model_config(text, file);
}

ModelConfig parse_model_config(const std::string& text, const std::string& file) {
  nlohmann::json json = parse_json(text, file);
  check(json.is_object(), file + ": expected a JSON object");

  ModelConfig config;
  config.raw = json;
  auto architectures = json.find("architectures");
  check(architectures != json.end() && architectures->is_array() && !architectures->empty() &&
            (*architectures)[0].is_string(),
        file + ": missing 'architectures' (e.g. [\"LlamaForCausalLM\"])");
  config.architecture = (*architectures)[0].get<std::string>();
  const ModelFamily& family = family_of(config.architecture, file);
  read_key(json, file, "model_type", config.model_type);
  config.bnb_nf4 = read_quantization_config(json, file).four_bit;
  family.read_config(json, file, config);

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
  positive(config.head_dim, "head_dim");
  if (family.finish_config) family.finish_config(json, file, config);
  return config;
}

}  // namespace peft
