// The Phi-3 family's registry entry: Phi3ForCausalLM. Every config.json key it reads is listed in
// docs/MODEL_FAMILIES.md.
#include "core/error.h"
#include "models/config_keys.h"
#include "models/decoder/decoder_config.h"
#include "models/phi3/names.h"
#include "models/phi3/phi3.h"
#include "models/registry.h"

namespace peft {
namespace {

void read_phi3_config(const nlohmann::json& json, const std::string& file, ModelConfig& config) {
  read_decoder_keys(json, file, config);
  read_key(json, file, "hidden_act", config.hidden_act);
  check(config.hidden_act == "silu", file + ": unsupported hidden_act '" + config.hidden_act + "' (supported: silu)");
  refuse_unless(json, file, "resid_pdrop", 0.0, "dropout on the residual branches is not implemented");
  refuse_unless(json, file, "embd_pdrop", 0.0, "dropout on the embeddings is not implemented");
  // Phi-3's mask slides on every layer when the config gives a window (transformers' Phi3Model).
  read_key(json, file, "sliding_window", config.sliding_window);
  read_sliding_layers(json, file, config, [](int64_t) { return true; });
}

}  // namespace

ModelFamily phi3_family() {
  ModelFamily family;
  family.name = "phi3";
  family.architectures = {"Phi3ForCausalLM"};
  family.read_config = read_phi3_config;
  family.finish_config = read_rope;
  family.make = [](const ModelConfig& config, const torch::TensorOptions& options, int64_t) {
    return std::make_shared<Phi3ForCausalLM>(config, options);
  };
  family.tensor_names = phi3::tensor_names;
  family.default_targets = phi3::default_targets;
  return family;  // Phi-3's config has no bias options: none added on merge
}

}  // namespace peft
