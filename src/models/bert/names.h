// The BERT family's Hugging Face tensor names, as data: BertForSequenceClassification and
// RobertaForSequenceClassification. Modules in bert.h are registered under these names. The base model lives
// under "bert." or "roberta." (checkpoints saved from BertModel / RobertaModel leave the prefix out); the task head
// is "classifier" (BERT: one Linear over the pooled token 0; RoBERTa: classifier.dense and classifier.out_proj).
#pragma once

#include <string>
#include <vector>

#include "core/strings.h"
#include "models/model_config.h"
#include "models/causal_lm.h"

namespace peft::bert {

inline bool is_roberta(const ModelConfig& config) { return config.model_type == "roberta"; }
inline std::string base_prefix(const ModelConfig& config) { return is_roberta(config) ? "roberta." : "bert."; }

// The pretrained encoder's tensors (embeddings and blocks; BERT's pooler too), in module order.
inline std::vector<std::string> encoder_tensor_names(const ModelConfig& config) {
  std::string base = base_prefix(config);
  std::vector<std::string> names;
  for (const char* table : {"word_embeddings", "position_embeddings", "token_type_embeddings"}) {
    names.push_back(base + "embeddings." + table + ".weight");
  }
  names.push_back(base + "embeddings.LayerNorm.weight");
  names.push_back(base + "embeddings.LayerNorm.bias");
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    std::string layer = base + "encoder.layer." + std::to_string(i) + ".";
    for (const char* module :
         {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
          "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"}) {
      names.push_back(layer + module + ".weight");
      names.push_back(layer + module + ".bias");
    }
  }
  if (!is_roberta(config)) {
    names.push_back(base + "pooler.dense.weight");
    names.push_back(base + "pooler.dense.bias");
  }
  return names;
}

// The classification head's tensors: created for the data's labels when the checkpoint has none.
inline std::vector<std::string> head_tensor_names(const ModelConfig& config) {
  if (is_roberta(config)) {
    return {"classifier.dense.weight", "classifier.dense.bias", "classifier.out_proj.weight",
            "classifier.out_proj.bias"};
  }
  return {"classifier.weight", "classifier.bias"};
}

// Checkpoint tensors that are not parameters of the classifier: pretraining heads, RoBERTa's unused pooler and
// the position_ids buffer older files carry.
inline bool expected_unused(const std::string& name) {
  return starts_with(name, "cls.") || starts_with(name, "lm_head.") || ends_with(name, "pooler.dense.weight") ||
         ends_with(name, "pooler.dense.bias") || ends_with(name, "embeddings.position_ids");
}

// PEFT's defaults for model_type bert / roberta. BitFit's subset is the paper's: query and intermediate biases.
inline std::vector<std::string> default_targets(const ModelConfig&, DefaultTargets which) {
  switch (which) {
    case DefaultTargets::lora:
      return {"query", "value"};
    case DefaultTargets::ia3:
      return {"key", "value", "output.dense"};
    case DefaultTargets::ia3_feedforward:
      return {"output.dense"};
    case DefaultTargets::bitfit_subset:
      return {"query", "intermediate.dense"};
  }
  return {};
}

}  // namespace peft::bert
