// The Llama family's Hugging Face tensor names, as data. The modules in llama.h are registered under exactly
// these names, so load_model() finds each parameter in the checkpoint by its own name; this table is what a
// test checks the module tree against, and what an error message can point a user to.
#pragma once

#include <string>
#include <vector>

#include "io/hf_config.h"

namespace peft::llama {

// Every tensor a checkpoint of `config` must hold, in module order.
inline std::vector<std::string> tensor_names(const ModelConfig& config) {
  std::vector<std::string> names = {"model.embed_tokens.weight"};
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    std::string layer = "model.layers." + std::to_string(i) + ".";
    names.push_back(layer + "self_attn.q_proj.weight");
    if (config.attention_bias) names.push_back(layer + "self_attn.q_proj.bias");
    names.push_back(layer + "self_attn.k_proj.weight");
    if (config.attention_bias) names.push_back(layer + "self_attn.k_proj.bias");
    names.push_back(layer + "self_attn.v_proj.weight");
    if (config.attention_bias) names.push_back(layer + "self_attn.v_proj.bias");
    names.push_back(layer + "self_attn.o_proj.weight");
    if (config.output_bias) names.push_back(layer + "self_attn.o_proj.bias");
    for (const char* projection : {"gate_proj", "up_proj", "down_proj"}) {
      names.push_back(layer + "mlp." + projection + ".weight");
      if (config.mlp_bias) names.push_back(layer + "mlp." + projection + ".bias");
    }
    names.push_back(layer + "input_layernorm.weight");
    names.push_back(layer + "post_attention_layernorm.weight");
  }
  names.push_back("model.norm.weight");
  if (!config.tie_word_embeddings) names.push_back("lm_head.weight");
  return names;
}

}  // namespace peft::llama
