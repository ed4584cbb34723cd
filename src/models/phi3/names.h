// The Phi-3 family's Hugging Face tensor names, as data (Phi3ForCausalLM). The modules in phi3.h are registered
// under exactly these names.
#pragma once

#include <string>
#include <vector>

#include "models/model.h"
#include "models/model_config.h"

namespace peft::phi3 {

// Every tensor a checkpoint of `config` must hold, in module order.
inline std::vector<std::string> tensor_names(const ModelConfig& config) {
  std::vector<std::string> names = {"model.embed_tokens.weight"};
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    std::string layer = "model.layers." + std::to_string(i) + ".";
    for (const char* name : {"self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj",
                             "input_layernorm", "post_attention_layernorm"}) {
      names.push_back(layer + name + ".weight");
    }
  }
  names.push_back("model.norm.weight");
  if (!config.tie_word_embeddings) names.push_back("lm_head.weight");
  return names;
}

// PEFT has no LoRA or (IA)³ defaults for model_type phi3 (target_modules must be named, e.g. [qkv_proj] or
// all-linear), and neither has this tool. BitFit's subset: the fused projections holding the query and the
// intermediate ones.
inline std::vector<std::string> default_targets(const ModelConfig&, DefaultTargets which) {
  if (which == DefaultTargets::bitfit_subset) return {"qkv_proj", "gate_up_proj"};
  return {};
}

}  // namespace peft::phi3
