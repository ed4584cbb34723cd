// The model families the tool knows, one entry each: the architectures it accepts, its config.json reader, its
// factory, its Hugging Face tensor-name table and PEFT's default targets for it. A new family is a folder under
// models/ (its modules, names.h and family.cpp defining its entry) plus one line in registry.cpp.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "models/model_config.h"

namespace peft {

class Transformer;

struct ModelFamily {
  std::string name;                        // its folder: "llama", "gemma", "phi3", "gpt2", "bert"
  std::vector<std::string> architectures;  // config.json's architectures[0] values it loads
  // Reads the family's keys into `config` (architecture and model_type are set): sizes, and every key that changes
  // the computation, implemented or refused with one line naming the file and the key.
  std::function<void(const nlohmann::json&, const std::string& file, ModelConfig&)> read_config;
  // Checks that need the shared sizes (head_dim derived from hidden_size when absent); may be empty.
  std::function<void(const nlohmann::json&, const std::string& file, ModelConfig&)> finish_config;
  // A model of `config` with uninitialised, frozen weights (load_model() fills them); encoders classify into
  // `num_labels` classes.
  std::function<std::shared_ptr<Transformer>(const ModelConfig&, const torch::TensorOptions&, int64_t num_labels)>
      make;
  // Every tensor a checkpoint of `config` holds, in module order (names.h).
  std::function<std::vector<std::string>(const ModelConfig&)> tensor_names;
  // PEFT's target_modules for the family when a config names none.
  std::function<std::vector<std::string>(const ModelConfig&, DefaultTargets)> default_targets;
  // What every tensor name of the model's own has before it in a checkpoint that holds more than the model (a
  // multimodal checkpoint's text tower: "language_model."); its other tensors (other towers) are not used. May
  // be empty: the names are the model's.
  std::function<std::string(const ModelConfig&)> checkpoint_prefix;
  // peft-merge: declares in `config` and `json` the biases a method added (`added`: parameter names not in the
  // checkpoint's table), or throws when config.json cannot express them. Empty: no method can add one.
  std::function<void(const std::set<std::string>& added, ModelConfig& config, nlohmann::json& json)> declare_biases;
};

const std::vector<ModelFamily>& model_families();

// The family that loads `architecture`; otherwise a peft::Error "FILE: unsupported architecture ..." listing them.
const ModelFamily& family_of(const std::string& architecture, const std::string& file = "config.json");

std::vector<std::string> supported_architectures();

}  // namespace peft
