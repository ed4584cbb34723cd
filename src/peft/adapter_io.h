// HF PEFT adapter directories: adapter_model.safetensors (float32) + adapter_config.json (indent 2, sorted keys).
#pragma once

#include <memory>
#include <string>

#include "peft/method.h"

namespace peft {

class CausalLM;

// Writes both files atomically into `directory` (created if needed).
void save_adapter(const std::string& directory, const Method& method, const std::string& base_model_path);

// Reads adapter_config.json, builds the method it names, attaches it to `model` and loads its tensors.
// Throws peft::Error naming the file for a missing or invalid config, an unsupported peft_type, and tensors
// that do not fit the model.
std::unique_ptr<Method> load_adapter(const std::string& directory, CausalLM& model);

}  // namespace peft
