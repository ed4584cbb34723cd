// Builds a model of the family config.json names and fills it from the directory's safetensors weights.
#pragma once

#include <memory>
#include <string>

#include "models/causal_lm.h"

namespace peft {

struct LoadOptions {
  std::string dtype = "float32";  // compute dtype of the frozen base
  std::string device = "auto";
};

// The loaded model is frozen (no parameter requires grad). Throws peft::Error naming the file for: a missing
// directory, config.json or weights; an unsupported architecture (listing the supported ones); a tensor the
// architecture needs that the checkpoint lacks; a tensor whose shape disagrees with config.json.
std::shared_ptr<CausalLM> load_model(const std::string& directory, const LoadOptions& options);

// A model of the family `config` names with uninitialised weights (for benchmarks and tests).
std::shared_ptr<CausalLM> make_model(const ModelConfig& config, const torch::TensorOptions& options);

}  // namespace peft
