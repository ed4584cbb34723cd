// Reading config.json keys for the families' readers: one line naming the file and the key for a missing or
// mistyped value, and one for a key whose value the tool does not implement.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/model_config.h"

namespace peft {

// json[key] into `value` when present and not null; required keys must be there.
template <typename T>
void read_key(const nlohmann::json& json, const std::string& file, const char* key, T& value, bool required = false) {
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

// The sizes HF's Llama-style and BERT-style configs name alike (vocab_size, hidden_size, intermediate_size,
// num_hidden_layers, num_attention_heads), all required; num_key_value_heads defaults to the attention heads.
void read_sizes(const nlohmann::json& json, const std::string& file, ModelConfig& config);

// A token id that may be a list (Llama 3's eos_token_id); the first entry is the one generation stops on.
int64_t read_token_id(const nlohmann::json& json, const std::string& file, const char* key, int64_t fallback);

// Refuses `key` when present with a value other than `allowed` (a dropout probability, a flag the tool does not
// implement): "FILE: KEY VALUE is not supported (WHY)".
void refuse_unless(const nlohmann::json& json, const std::string& file, const char* key,
                   const nlohmann::json& allowed, const std::string& why);

}  // namespace peft
