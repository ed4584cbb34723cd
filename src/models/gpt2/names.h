// The GPT-2 family's Hugging Face tensor names, as data (GPT2LMHeadModel). Modules in gpt2.h are registered
// under these names. GPT-2's linear layers are Conv1D modules whose weights the checkpoint stores [in, out]; the
// model holds every Projection weight as (out, in), so the loader transposes these on load and the exporter on
// save, and LoRA/(IA)³ adapters record fan_in_fan_out: true for them as PEFT does.
#pragma once

#include <string>
#include <vector>

#include "core/strings.h"
#include "models/model_config.h"
#include "models/causal_lm.h"

namespace peft::gpt2 {

// Checkpoints saved from GPT2Model (the original OpenAI conversion) omit this prefix.
inline const std::string kBasePrefix = "transformer.";

// The Conv1D modules of a block, relative to transformer.h.N.
inline const std::vector<std::string> kConv1dModules = {"attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"};

// Every tensor a checkpoint of `config` must hold, in module order.
inline std::vector<std::string> tensor_names(const ModelConfig& config) {
  std::vector<std::string> names = {"transformer.wte.weight", "transformer.wpe.weight"};
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    std::string block = "transformer.h." + std::to_string(i) + ".";
    names.push_back(block + "ln_1.weight");
    names.push_back(block + "ln_1.bias");
    for (const auto& module : {kConv1dModules[0], kConv1dModules[1]}) {
      names.push_back(block + module + ".weight");
      names.push_back(block + module + ".bias");
    }
    names.push_back(block + "ln_2.weight");
    names.push_back(block + "ln_2.bias");
    for (const auto& module : {kConv1dModules[2], kConv1dModules[3]}) {
      names.push_back(block + module + ".weight");
      names.push_back(block + module + ".bias");
    }
  }
  names.push_back("transformer.ln_f.weight");
  names.push_back("transformer.ln_f.bias");
  if (!config.tie_word_embeddings) names.push_back("lm_head.weight");
  return names;
}

// True for the weights stored [in, out] (Conv1D).
inline bool stored_transposed(const std::string& name) {
  if (!starts_with(name, "transformer.h.") || !ends_with(name, ".weight")) return false;
  for (const auto& module : kConv1dModules) {
    if (ends_with(name, "." + module + ".weight")) return true;
  }
  return false;
}

// Checkpoint tensors that are not parameters: the causal-mask buffers older GPT-2 files carry, and a saved
// copy of the tied head.
inline bool expected_unused(const std::string& name) {
  return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias") || name == "lm_head.weight";
}

// PEFT's defaults for model_type gpt2 (TRANSFORMERS_MODELS_TO_*_MAPPING). BitFit's subset, the paper's query
// and intermediate biases, is the fused c_attn bias (q, k and v together) and c_fc.
inline std::vector<std::string> default_targets(const ModelConfig&, DefaultTargets which) {
  switch (which) {
    case DefaultTargets::lora:
      return {"c_attn"};
    case DefaultTargets::ia3:
      return {"c_attn", "mlp.c_proj"};
    case DefaultTargets::ia3_feedforward:
      return {"mlp.c_proj"};
    case DefaultTargets::bitfit_subset:
      return {"c_attn", "c_fc"};
  }
  return {};
}

// What each dimension of the stack's parameters indexes (Ladder Side-Tuning's structural pruning), with the
// weights as the model holds them, (out, in). c_attn's rows are [queries; keys; values], each (head, head dim).
inline StackLayout stack_layout() {
  using A = Axis;
  StackLayout layout;
  layout.stack_prefix = kBasePrefix;
  layout.blocks = "h";
  auto add = [&](const std::string& name, std::vector<Axis> axes) {
    layout.block.push_back({name + ".weight", axes});
    layout.block.push_back({name + ".bias", {axes[0]}});
  };
  add("attn.c_attn", {A::fused_qkv_heads, A::hidden});
  add("attn.c_proj", {A::hidden, A::query_heads});
  add("mlp.c_fc", {A::feed_forward, A::hidden});
  add("mlp.c_proj", {A::hidden, A::feed_forward});
  add("ln_1", {A::hidden});
  add("ln_2", {A::hidden});
  layout.outside_blocks = {{"wte.weight", {A::other, A::hidden}},
                           {"wpe.weight", {A::other, A::hidden}},
                           {"ln_f.weight", {A::hidden}},
                           {"ln_f.bias", {A::hidden}}};
  return layout;
}

}  // namespace peft::gpt2
