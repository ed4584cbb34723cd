// config.json keys that the rotary decoder families (Llama, Gemma, Phi-3) read the same way.
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "models/model_config.h"

namespace peft {

// Sizes, rms_norm_eps, max_position_embeddings, tie_word_embeddings, torch_dtype and the token ids; a non-zero
// attention_dropout is refused (HF applies it to the attention weights in training; this tool does not).
void read_decoder_keys(const nlohmann::json& json, const std::string& file, ModelConfig& config,
                       bool tie_by_default = false);

// Reads the rotary settings into config.rope (and config.rope_local / local_rope where the sliding layers rotate
// differently): rope_theta and rope_scaling (transformers 4), or rope_parameters with rope_theta inside
// (transformers 5, also per layer type), and partial_rotary_factor. Needs config.head_dim and
// max_position_embeddings. Unknown rope types, dynamic scaling and incomplete parameters are refused with one line.
void read_rope(const nlohmann::json& json, const std::string& file, ModelConfig& config);

// config.sliding_layers for config.sliding_window (set by the caller; 0 means no layer slides): config.json's
// layer_types when it has them ("full_attention" / "sliding_attention", one per layer), else `slides(i)`.
void read_sliding_layers(const nlohmann::json& json, const std::string& file, ModelConfig& config,
                         const std::function<bool(int64_t layer)>& slides);

}  // namespace peft
