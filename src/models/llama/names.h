// The Llama family's Hugging Face tensor names, as data. The modules in llama.h are registered under exactly
// these names, so load_model() finds each parameter in the checkpoint by its own name; this table is what a
// test checks the module tree against, and what an error message can point a user to.
#pragma once

#include <string>
#include <vector>

#include "models/model_config.h"
#include "models/causal_lm.h"
#include "models/model.h"

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
    if (config.qk_norm) {
      names.push_back(layer + "self_attn.q_norm.weight");
      names.push_back(layer + "self_attn.k_norm.weight");
    }
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

// PEFT's defaults for model_type llama / mistral / qwen2 / qwen3. BitFit's subset is the paper's query and
// intermediate biases (BERT's attention.self.query and intermediate.dense).
inline std::vector<std::string> default_targets(const ModelConfig& config, DefaultTargets which) {
  switch (which) {
    case DefaultTargets::lora:
      return {"q_proj", "v_proj"};
    case DefaultTargets::ia3:  // PEFT's Qwen3 mapping takes the queries where Llama's takes the keys
      if (config.model_type == "qwen3") return {"q_proj", "v_proj", "down_proj"};
      return {"k_proj", "v_proj", "down_proj"};
    case DefaultTargets::ia3_feedforward:
      return {"down_proj"};
    case DefaultTargets::bitfit_subset:
      return {"q_proj", "up_proj"};
  }
  return {};
}

// What each dimension of the stack's parameters indexes (Ladder Side-Tuning's structural pruning). Weights are
// (out, in); q_proj's rows are (head, head dim) pairs of the query heads, k/v_proj's of the key/value heads.
inline StackLayout stack_layout(const ModelConfig& config) {
  using A = Axis;
  StackLayout layout;
  layout.stack_prefix = "model.";
  layout.rotary = true;
  auto add = [&](const std::string& name, std::vector<Axis> axes, bool bias) {
    layout.block.push_back({name + ".weight", axes});
    if (bias) layout.block.push_back({name + ".bias", {axes[0]}});
  };
  add("self_attn.q_proj", {A::query_heads, A::hidden}, config.attention_bias);
  add("self_attn.k_proj", {A::kv_heads, A::hidden}, config.attention_bias);
  add("self_attn.v_proj", {A::kv_heads, A::hidden}, config.attention_bias);
  add("self_attn.o_proj", {A::hidden, A::query_heads}, config.output_bias);
  add("mlp.gate_proj", {A::feed_forward, A::hidden}, config.mlp_bias);
  add("mlp.up_proj", {A::feed_forward, A::hidden}, config.mlp_bias);
  add("mlp.down_proj", {A::hidden, A::feed_forward}, config.mlp_bias);
  layout.block.push_back({"input_layernorm.weight", {A::hidden}});
  layout.block.push_back({"post_attention_layernorm.weight", {A::hidden}});
  layout.outside_blocks = {{"embed_tokens.weight", {A::other, A::hidden}}, {"norm.weight", {A::hidden}}};
  return layout;
}

}  // namespace peft::llama
