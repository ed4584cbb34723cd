// Checkpoints saved quantized by bitsandbytes (transformers' load_in_4bit, then save_pretrained): each quantized
// projection's `weight` holds packed 4-bit codes and its quant state sits beside it:
//   <p>.weight                               uint8 [ceil(n/2), 1] (another storage dtype holds the same bytes)
//   <p>.weight.absmax                        float32 [blocks], or uint8 [blocks] with double quantization
//   <p>.weight.quant_map                     float32 [16]
//   <p>.weight.nested_absmax, .nested_quant_map   double quantization only
//   <p>.weight.quant_state.bitsandbytes__nf4 uint8: the JSON {quant_type, blocksize, dtype, shape[, nested_blocksize,
//                                            nested_dtype, nested_offset]}
// config.json says so in quantization_config {quant_method: bitsandbytes, load_in_4bit, bnb_4bit_quant_type, ...}.
#pragma once

#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "models/quantized_weight.h"

namespace peft {

// What config.json's quantization_config says; throws peft::Error naming `file` for what this tool does not read
// (8-bit LLM.int8 checkpoints, another quant_method, fp4).
struct CheckpointQuantization {
  bool four_bit = false;  // bitsandbytes nf4: quantized projections carry a quant state
};
CheckpointQuantization read_quantization_config(const nlohmann::json& config, const std::string& file);

// The quant state's keys for `weight_name` ("model.layers.0.self_attn.q_proj.weight").
bool has_bnb_quant_state(const safetensors::Checkpoint& checkpoint, const std::string& weight_name);

// The 4-bit weight stored under `weight_name`, checked against the projection's [out, in]; the keys read are added to
// `used`. Throws peft::Error naming the checkpoint and key for a truncated or inconsistent state, fp4, or a shape
// that does not fit.
QuantizedWeight read_bnb_4bit(const safetensors::Checkpoint& checkpoint, const std::string& weight_name,
                              int64_t out_features, int64_t in_features, const torch::Device& device,
                              std::set<std::string>& used);

}  // namespace peft
