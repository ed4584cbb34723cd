// The Gemma family's registry entry: Gemma2ForCausalLM, Gemma3ForCausalLM and the text tower of
// Gemma3ForConditionalGeneration. Every config.json key they read is listed in docs/MODEL_FAMILIES.md.
#include <cmath>

#include "core/error.h"
#include "models/config_keys.h"
#include "models/decoder/decoder_config.h"
#include "models/gemma/gemma.h"
#include "models/gemma/names.h"
#include "models/registry.h"

namespace peft {
namespace {

bool is_multimodal(const ModelConfig& config) { return config.architecture == "Gemma3ForConditionalGeneration"; }
bool is_gemma3(const ModelConfig& config) {
  return config.architecture == "Gemma3ForCausalLM" || is_multimodal(config);
}

// The text model's keys: a multimodal checkpoint's text_config, else the file itself.
const nlohmann::json& text_keys(const nlohmann::json& json, const std::string& file, const ModelConfig& config) {
  if (!is_multimodal(config)) return json;
  auto it = json.find("text_config");
  check(it != json.end() && it->is_object(),
        file + ": Gemma3ForConditionalGeneration needs its text model's settings in a 'text_config' object");
  return *it;
}

// A soft-capping key: its default when absent, none when null, else a positive cap.
double softcap(const nlohmann::json& json, const std::string& file, const char* key, double fallback) {
  auto it = json.find(key);
  if (it == json.end()) return fallback;
  if (it->is_null()) return 0.0;
  double cap = 0.0;
  read_key(json, file, key, cap);
  check(cap > 0, file + ": " + key + " must be positive or null");
  return cap;
}

void read_gemma_config(const nlohmann::json& file_json, const std::string& path, ModelConfig& config) {
  const nlohmann::json& json = text_keys(file_json, path, config);
  std::string file = is_multimodal(config) ? path + ": text_config" : path;
  if (is_multimodal(config)) {
    // Only the text tower is loaded: it is a Gemma3ForCausalLM, and peft-merge writes it as one.
    config.raw = json;
    config.raw["architectures"] = {"Gemma3ForCausalLM"};
    config.raw["model_type"] = config.model_type = "gemma3_text";
  }
  config.head_dim = 256;  // transformers' default for Gemma, not hidden_size / heads
  read_decoder_keys(json, file, config, /*tie_by_default=*/true);
  config.hidden_act = "gelu_pytorch_tanh";
  read_key(json, file, "hidden_activation", config.hidden_act);
  check(config.hidden_act == "gelu_pytorch_tanh" || config.hidden_act == "gelu",
        file + ": unsupported hidden_activation '" + config.hidden_act + "' (supported: gelu_pytorch_tanh, gelu)");
  read_key(json, file, "attention_bias", config.attention_bias);
  config.output_bias = config.attention_bias;
  refuse_unless(json, file, "use_bidirectional_attention", false, "Gemma 3's encoder mode; causal attention only");

  double query_pre_attn_scalar = 256;
  read_key(json, file, "query_pre_attn_scalar", query_pre_attn_scalar);
  check(query_pre_attn_scalar > 0, file + ": query_pre_attn_scalar must be positive");
  config.attention_scale = 1.0 / std::sqrt(query_pre_attn_scalar);
  bool gemma3 = is_gemma3(config);
  config.attention_softcap = softcap(json, file, "attn_logit_softcapping", gemma3 ? 0.0 : 50.0);
  config.final_logit_softcap = softcap(json, file, "final_logit_softcapping", gemma3 ? 0.0 : 30.0);
  config.qk_norm = gemma3;

  // Local (sliding) and global layers: Gemma 2 alternates, starting local; Gemma 3 has every
  // sliding_window_pattern-th layer global (transformers' layer_types rule when config.json lists none).
  config.sliding_window = 4096;
  read_key(json, file, "sliding_window", config.sliding_window);
  int64_t pattern = 2;
  if (gemma3) {
    pattern = 6;
    read_key(json, file, "sliding_window_pattern", pattern);
    read_key(json, file, "_sliding_window_pattern", pattern);
    check(pattern > 0, file + ": sliding_window_pattern must be positive");
  }
  read_sliding_layers(json, file, config, [pattern](int64_t i) { return (i + 1) % pattern != 0; });
}

void finish_gemma_config(const nlohmann::json& file_json, const std::string& path, ModelConfig& config) {
  const nlohmann::json& json = text_keys(file_json, path, config);
  std::string file = is_multimodal(config) ? path + ": text_config" : path;
  if (is_gemma3(config) && !json.contains("rope_theta") && !json.contains("rope_parameters")) {
    nlohmann::json with_default = json;  // Gemma 3's global base when config.json leaves it out
    with_default["rope_theta"] = 1000000.0;
    read_rope(with_default, file, config);
  } else {
    read_rope(json, file, config);
  }
  if (is_gemma3(config) && !config.local_rope) {
    // Local layers rotate with rope_local_base_freq and no scaling; rope_scaling is the global layers'.
    config.local_rope = true;
    config.rope_local = RopeSpec{};
    config.rope_local.dim = config.rope.dim;
    config.rope_local.theta = 10000.0;
    read_key(json, file, "rope_local_base_freq", config.rope_local.theta);
    check(config.rope_local.theta > 0, file + ": rope_local_base_freq must be positive");
  }
}

}  // namespace

ModelFamily gemma_family() {
  ModelFamily family;
  family.name = "gemma";
  family.architectures = {"Gemma2ForCausalLM", "Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"};
  family.read_config = read_gemma_config;
  family.finish_config = finish_gemma_config;
  family.make = [](const ModelConfig& config, const torch::TensorOptions& options, int64_t) {
    return std::make_shared<GemmaForCausalLM>(config, options);
  };
  family.tensor_names = gemma::tensor_names;
  // The hub's multimodal checkpoints hold the text model under language_model. (beside vision_tower.*).
  family.checkpoint_prefix = [](const ModelConfig& config) {
    return is_multimodal(config) ? std::string("language_model.") : std::string();
  };
  family.default_targets = gemma::default_targets;
  return family;  // config.json declares attention biases only all together: none added on merge
}

}  // namespace peft
