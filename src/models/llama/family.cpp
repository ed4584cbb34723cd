// The Llama family's registry entry: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM.
// Every config.json key they read is listed in docs/MODEL_FAMILIES.md.
#include "core/error.h"
#include "models/config_keys.h"
#include "models/decoder/decoder_config.h"
#include "models/llama/llama.h"
#include "models/llama/names.h"
#include "models/registry.h"

namespace peft {
namespace {

void read_llama_config(const nlohmann::json& json, const std::string& file, ModelConfig& config) {
  read_decoder_keys(json, file, config);
  read_key(json, file, "hidden_act", config.hidden_act);
  check(config.hidden_act == "silu", file + ": unsupported hidden_act '" + config.hidden_act + "' (supported: silu)");
  const std::string& arch = config.architecture;
  if (arch == "Qwen2ForCausalLM") {
    // Qwen2 always has q/k/v biases and none on o_proj; its config has no attention_bias key.
    config.attention_bias = true;
    config.output_bias = false;
  } else {
    read_key(json, file, "attention_bias", config.attention_bias);  // Llama, Qwen3: q, k, v and o
    config.output_bias = config.attention_bias;
  }
  if (arch == "LlamaForCausalLM") read_key(json, file, "mlp_bias", config.mlp_bias);
  config.qk_norm = arch == "Qwen3ForCausalLM";

  // Sliding windows: Mistral's applies to every layer; Qwen2/Qwen3 slide only with use_sliding_window, and then
  // the layers from max_window_layers on (transformers' layer_types rule).
  if (arch == "MistralForCausalLM") {
    read_key(json, file, "sliding_window", config.sliding_window);
    read_sliding_layers(json, file, config, [](int64_t) { return true; });
  } else if (arch == "Qwen2ForCausalLM" || arch == "Qwen3ForCausalLM") {
    bool use_sliding_window = false;
    read_key(json, file, "use_sliding_window", use_sliding_window);
    if (use_sliding_window) read_key(json, file, "sliding_window", config.sliding_window);
    int64_t max_window_layers = config.num_hidden_layers;
    read_key(json, file, "max_window_layers", max_window_layers);
    read_sliding_layers(json, file, config, [&](int64_t i) { return i >= max_window_layers; });
  } else {
    read_sliding_layers(json, file, config, [](int64_t) { return false; });
  }
}

void declare_llama_biases(const std::set<std::string>& added, ModelConfig& config, nlohmann::json& json) {
  // Only LlamaForCausalLM's config can declare biases (attention_bias for q/k/v/o, mlp_bias for the MLP).
  check(config.architecture == "LlamaForCausalLM",
        config.architecture +
            "'s config.json cannot declare the biases this adapter added; merge is possible for LlamaForCausalLM "
            "only (or keep the adapter unmerged)");
  for (const auto& name : added) {
    if (name.find(".self_attn.") != std::string::npos) config.attention_bias = config.output_bias = true;
    if (name.find(".mlp.") != std::string::npos) config.mlp_bias = true;
  }
  json["attention_bias"] = config.attention_bias;
  json["mlp_bias"] = config.mlp_bias;
}

}  // namespace

ModelFamily llama_family() {
  ModelFamily family;
  family.name = "llama";
  family.architectures = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};
  family.read_config = read_llama_config;
  family.finish_config = read_rope;
  family.make = [](const ModelConfig& config, const torch::TensorOptions& options, int64_t) {
    return std::make_shared<LlamaForCausalLM>(config, options);
  };
  family.tensor_names = llama::tensor_names;
  family.default_targets = llama::default_targets;
  family.declare_biases = declare_llama_biases;
  return family;
}

}  // namespace peft
