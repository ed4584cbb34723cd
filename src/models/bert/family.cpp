// The BERT family's registry entry: BERT and RoBERTa checkpoints of any head load as sequence classifiers (a
// missing head is created). model_type decides the family's details (RoBERTa's positions and head).
#include "core/error.h"
#include "models/bert/bert.h"
#include "models/bert/names.h"
#include "models/config_keys.h"
#include "models/registry.h"

namespace peft {
namespace {

void read_encoder_config(const nlohmann::json& json, const std::string& file, ModelConfig& config) {
  if (config.model_type.empty()) config.model_type = config.architecture.rfind("Roberta", 0) == 0 ? "roberta" : "bert";
  check(config.model_type == "bert" || config.model_type == "roberta",
        file + ": model_type '" + config.model_type + "' does not match " + config.architecture);
  read_sizes(json, file, config);
  config.max_position_embeddings = 512;
  read_key(json, file, "max_position_embeddings", config.max_position_embeddings);
  config.layer_norm_eps = 1e-12;
  read_key(json, file, "layer_norm_eps", config.layer_norm_eps);
  check(config.layer_norm_eps > 0, file + ": layer_norm_eps must be positive");
  config.hidden_act = "gelu";
  read_key(json, file, "hidden_act", config.hidden_act);
  check(config.hidden_act == "gelu", file + ": unsupported hidden_act '" + config.hidden_act + "' (supported: gelu)");
  read_key(json, file, "type_vocab_size", config.type_vocab_size);
  check(config.type_vocab_size > 0, file + ": type_vocab_size must be positive");
  config.pad_token_id = config.model_type == "roberta" ? 1 : 0;
  read_key(json, file, "pad_token_id", config.pad_token_id);
  read_key(json, file, "torch_dtype", config.torch_dtype);
  std::string positions = "absolute";
  read_key(json, file, "position_embedding_type", positions);
  check(positions == "absolute", file + ": position_embedding_type '" + positions + "' is not supported (absolute)");
  auto labels = json.find("id2label");
  if (labels != json.end() && labels->is_object()) config.num_labels = static_cast<int64_t>(labels->size());
  read_key(json, file, "num_labels", config.num_labels);
  config.attention_bias = config.output_bias = config.mlp_bias = true;
  config.bos_token_id = read_token_id(json, file, "bos_token_id", config.model_type == "roberta" ? 0 : 101);
  config.eos_token_id = read_token_id(json, file, "eos_token_id", config.model_type == "roberta" ? 2 : 102);
}

}  // namespace

ModelFamily bert_family() {
  ModelFamily family;
  family.name = "bert";
  family.architectures = {"BertForSequenceClassification",    "BertModel",    "BertForMaskedLM",
                          "BertLMHeadModel",                  "BertForPreTraining",
                          "RobertaForSequenceClassification", "RobertaModel", "RobertaForMaskedLM"};
  family.read_config = read_encoder_config;
  family.make = [](const ModelConfig& config, const torch::TensorOptions& options, int64_t num_labels) {
    return std::make_shared<BertForSequenceClassification>(config, num_labels, options);
  };
  family.tensor_names = [](const ModelConfig& config) {
    auto names = bert::encoder_tensor_names(config);
    for (const auto& name : bert::head_tensor_names(config)) names.push_back(name);
    return names;
  };
  family.default_targets = bert::default_targets;
  return family;  // every projection has its bias already: nothing to declare on merge
}

}  // namespace peft
