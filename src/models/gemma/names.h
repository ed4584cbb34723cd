// The Gemma family's Hugging Face tensor names, as data (Gemma2ForCausalLM, Gemma3ForCausalLM). The modules in
// gemma.h are registered under exactly these names.
#pragma once

#include <string>
#include <vector>

#include "models/model.h"
#include "models/model_config.h"

namespace peft::gemma {

// Every tensor a checkpoint of `config` must hold, in module order (the head is always tied to the embeddings).
inline std::vector<std::string> tensor_names(const ModelConfig& config) {
  std::vector<std::string> names = {"model.embed_tokens.weight"};
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    std::string layer = "model.layers." + std::to_string(i) + ".";
    for (const char* projection : {"q_proj", "k_proj", "v_proj", "o_proj"}) {
      names.push_back(layer + "self_attn." + projection + ".weight");
      if (config.attention_bias) names.push_back(layer + "self_attn." + projection + ".bias");
    }
    if (config.qk_norm) {
      names.push_back(layer + "self_attn.q_norm.weight");
      names.push_back(layer + "self_attn.k_norm.weight");
    }
    for (const char* projection : {"gate_proj", "up_proj", "down_proj"}) {
      names.push_back(layer + "mlp." + projection + ".weight");
    }
    for (const char* norm : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                             "post_feedforward_layernorm"}) {
      names.push_back(layer + norm + ".weight");
    }
  }
  names.push_back("model.norm.weight");
  if (!config.tie_word_embeddings) names.push_back("lm_head.weight");
  return names;
}

// PEFT's defaults for model_type gemma2 / gemma3_text (its LoRA and (IA)³ mappings); BitFit's subset as Llama's.
inline std::vector<std::string> default_targets(const ModelConfig&, DefaultTargets which) {
  switch (which) {
    case DefaultTargets::lora:
      return {"q_proj", "v_proj"};
    case DefaultTargets::ia3:
      return {"q_proj", "v_proj", "down_proj"};
    case DefaultTargets::ia3_feedforward:
      return {"down_proj"};
    case DefaultTargets::bitfit_subset:
      return {"q_proj", "up_proj"};
  }
  return {};
}

}  // namespace peft::gemma
