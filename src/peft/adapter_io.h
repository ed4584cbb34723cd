// HF PEFT adapter directories: adapter_model.safetensors (float32) + adapter_config.json (indent 2, sorted keys).
#pragma once

#include <memory>
#include <string>

#include "config/section.h"
#include "peft/method.h"

namespace peft {

class Model;

// Writes both files atomically into `directory` (created if needed).
void save_adapter(const std::string& directory, const Method& method, const std::string& base_model_path);

// Reads adapter_config.json, builds the method it names, attaches it to `model` and loads its tensors.
// Throws peft::Error naming the file for a missing or invalid config, an unsupported peft_type, and tensors
// that do not fit the model.
std::unique_ptr<Method> load_adapter(const std::string& directory, Model& model);

// adapter_config.json of `directory`, parsed. Throws peft::Error naming the file when it is missing or invalid.
nlohmann::json read_adapter_config(const std::string& directory);

// An integer of adapter_config.json that must be present and at least 1 (throws peft::Error naming the key).
int64_t positive_integer(const nlohmann::json& config, const std::string& key);

// Prompt-learning adapters (prompt, prefix tuning): refuses encoder-decoder ones (num_transformer_submodules 2).
void check_decoder_only(const nlohmann::json& config);

// A target_modules-style value of adapter_config.json: a string (regex), a list of strings, or null (an empty
// list). Throws peft::Error naming `key` for anything else.
StringOrList targets_from_json(const nlohmann::json& value, const std::string& key);

// target_modules as PEFT records it: the resolved module names for a list or "all-linear", a regex as written.
nlohmann::json targets_to_json(const StringOrList& targets, const std::vector<std::string>& resolved);

}  // namespace peft
