#include "io/hf_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/json_depth.h"
#include "core/strings.h"

namespace peft {
namespace {

// The Llama family's architectures share one block, differing only in config defaults and biases.
const std::vector<std::string> kLlamaArchitectures = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"};
// BERT and RoBERTa checkpoints of any head load as sequence classifiers (a missing head is created).
const std::vector<std::string> kEncoderArchitectures = {
    "BertForSequenceClassification",    "BertModel",    "BertForMaskedLM",   "BertLMHeadModel", "BertForPreTraining",
    "RobertaForSequenceClassification", "RobertaModel", "RobertaForMaskedLM"};
const std::vector<std::string> kGpt2Architectures = {"GPT2LMHeadModel"};

std::vector<std::string> supported_architectures() {
  std::vector<std::string> all = kLlamaArchitectures;
  all.insert(all.end(), kGpt2Architectures.begin(), kGpt2Architectures.end());
  all.insert(all.end(), kEncoderArchitectures.begin(), kEncoderArchitectures.end());
  return all;
}

bool among(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

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

void read_llama_keys(const nlohmann::json& json, const std::string& file, ModelConfig& config) {
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
}

// GPT2LMHeadModel's config.json keys (n_embd, n_layer, ...) mapped onto ModelConfig; GPT-2 always has biases
// and ties its head to the token embeddings unless the config says otherwise.
void read_gpt2_keys(const nlohmann::json& json, const std::string& file, ModelConfig& config) {
  read_key(json, file, "vocab_size", config.vocab_size, true);
  read_key(json, file, "n_embd", config.hidden_size, true);
  read_key(json, file, "n_layer", config.num_hidden_layers, true);
  read_key(json, file, "n_head", config.num_attention_heads, true);
  config.num_key_value_heads = config.num_attention_heads;
  config.intermediate_size = 4 * config.hidden_size;  // n_inner: null means 4 * n_embd
  read_key(json, file, "n_inner", config.intermediate_size, false);
  config.max_position_embeddings = 1024;
  read_key(json, file, "n_positions", config.max_position_embeddings, false);
  read_key(json, file, "layer_norm_epsilon", config.layer_norm_eps, false);
  config.hidden_act = "gelu_new";
  read_key(json, file, "activation_function", config.hidden_act, false);
  config.tie_word_embeddings = true;
  read_key(json, file, "tie_word_embeddings", config.tie_word_embeddings, false);
  read_key(json, file, "torch_dtype", config.torch_dtype, false);
  config.bos_token_id = read_token_id(json, file, "bos_token_id", 50256);
  config.eos_token_id = read_token_id(json, file, "eos_token_id", 50256);
  config.attention_bias = config.output_bias = config.mlp_bias = true;
  bool scaled = true;
  read_key(json, file, "scale_attn_weights", scaled, false);
  check(scaled, file + ": scale_attn_weights false is not supported");
}

// BERT / RoBERTa keys. model_type decides the family's details (RoBERTa's positions and head).
void read_encoder_keys(const nlohmann::json& json, const std::string& file, ModelConfig& config) {
  if (config.model_type.empty()) config.model_type = config.architecture.rfind("Roberta", 0) == 0 ? "roberta" : "bert";
  check(config.model_type == "bert" || config.model_type == "roberta",
        file + ": model_type '" + config.model_type + "' does not match " + config.architecture);
  read_key(json, file, "vocab_size", config.vocab_size, true);
  read_key(json, file, "hidden_size", config.hidden_size, true);
  read_key(json, file, "intermediate_size", config.intermediate_size, true);
  read_key(json, file, "num_hidden_layers", config.num_hidden_layers, true);
  read_key(json, file, "num_attention_heads", config.num_attention_heads, true);
  config.num_key_value_heads = config.num_attention_heads;
  config.max_position_embeddings = 512;
  read_key(json, file, "max_position_embeddings", config.max_position_embeddings, false);
  config.layer_norm_eps = 1e-12;
  read_key(json, file, "layer_norm_eps", config.layer_norm_eps, false);
  config.hidden_act = "gelu";
  read_key(json, file, "hidden_act", config.hidden_act, false);
  read_key(json, file, "type_vocab_size", config.type_vocab_size, false);
  config.pad_token_id = config.model_type == "roberta" ? 1 : 0;
  read_key(json, file, "pad_token_id", config.pad_token_id, false);
  read_key(json, file, "torch_dtype", config.torch_dtype, false);
  std::string positions = "absolute";
  read_key(json, file, "position_embedding_type", positions, false);
  check(positions == "absolute", file + ": position_embedding_type '" + positions + "' is not supported (absolute)");
  auto labels = json.find("id2label");
  if (labels != json.end() && labels->is_object()) config.num_labels = static_cast<int64_t>(labels->size());
  read_key(json, file, "num_labels", config.num_labels, false);
  config.attention_bias = config.output_bias = config.mlp_bias = true;
  config.bos_token_id = read_token_id(json, file, "bos_token_id", config.model_type == "roberta" ? 0 : 101);
  config.eos_token_id = read_token_id(json, file, "eos_token_id", config.model_type == "roberta" ? 2 : 102);
}

}  // namespace

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
  check(among(supported_architectures(), config.architecture),
        file + ": unsupported architecture '" + config.architecture +
            "'; supported: " + join(supported_architectures(), ", "));

  read_key(json, file, "model_type", config.model_type, false);
  bool llama = among(kLlamaArchitectures, config.architecture);
  bool encoder = among(kEncoderArchitectures, config.architecture);
  if (llama) {
    read_llama_keys(json, file, config);
  } else if (encoder) {
    read_encoder_keys(json, file, config);
  } else {
    read_gpt2_keys(json, file, config);
  }

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
  if (llama) {
    check(config.head_dim % 2 == 0, file + ": head_dim must be even for rotary embeddings");
    check(config.hidden_act == "silu", file + ": unsupported hidden_act '" + config.hidden_act + "' (supported: silu)");
    check(config.rms_norm_eps > 0 && config.rope_theta > 0, file + ": rms_norm_eps and rope_theta must be positive");
  } else if (encoder) {
    check(config.hidden_act == "gelu", file + ": unsupported hidden_act '" + config.hidden_act + "' (supported: gelu)");
    check(config.layer_norm_eps > 0, file + ": layer_norm_eps must be positive");
    check(config.type_vocab_size > 0, file + ": type_vocab_size must be positive");
  } else {
    const std::vector<std::string> activations = {"gelu_new", "gelu_pytorch_tanh", "gelu", "relu"};
    check(std::find(activations.begin(), activations.end(), config.hidden_act) != activations.end(),
          file + ": unsupported activation_function '" + config.hidden_act +
              "' (supported: " + join(activations, ", ") + ")");
    check(config.layer_norm_eps > 0, file + ": layer_norm_epsilon must be positive");
  }
  return config;
}

}  // namespace peft
