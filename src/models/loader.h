// Builds the base model model.path names: a Hugging Face directory (config.json + safetensors), or a TorchScript
// archive (.pt). An archive whose config.json (saved in it with _extra_files, or beside it) names a family the
// tool knows loads into that family's native model; any other archive is a ScriptModel (an unknown architecture,
// adapted at its linear layers).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "models/causal_lm.h"
#include "models/sequence_classifier.h"

namespace peft {

struct LoadOptions {
  std::string dtype = "float32";  // compute dtype of the frozen base
  std::string device = "auto";
  // Encoders (BERT, RoBERTa) become sequence classifiers with this many labels; 0 takes config.json's
  // id2label / num_labels. A checkpoint's own head must have this many.
  int64_t num_labels = 0;
  // Encoders: ignore a checkpoint's own classification head and start a new one (HF's ignore_mismatched_sizes),
  // e.g. to move a fine-tuned classifier to a task with other labels, or when an adapter brings the head.
  bool new_head = false;
  // TorchScript archives: auto (a known family when a config.json comes with it) | custom (always a ScriptModel)
  // | a family's model_type (llama, gpt2, bert, ...: its config.json must come with it).
  std::string arch = "auto";
  // A ScriptModel's output contract: logits | loss (models/torchscript/script_model.h).
  std::string output = "logits";
  // none | nf4 | int8: every projection but the output and classification heads is stored quantized
  // (models/quantized_weight.h); double_quant also quantizes nf4's block maxima. A bitsandbytes nf4 checkpoint
  // loads as it is stored under nf4, and dequantized otherwise.
  std::string quantize = "none";
  bool double_quant = false;
};

// config.json of the family `path` holds, or nullopt for a TorchScript archive of an unknown architecture (per
// options.arch). Throws peft::Error for a missing path, a file that is not a TorchScript archive, and an arch
// that needs a config.json the archive lacks.
std::optional<ModelConfig> family_config(const std::string& path, const std::string& arch);

// Where the tokenizer is: `tokenizer` when given, else the model directory, or the directory a .pt file is in.
std::string tokenizer_location(const std::string& model_path, const std::string& tokenizer);

// Any base model: a Transformer of a known family or a ScriptModel.
std::shared_ptr<Model> load_base_model(const std::string& path, const LoadOptions& options);

// The loaded model is frozen (no parameter requires grad). Throws peft::Error naming the file for: a missing
// directory, config.json or weights; an unsupported architecture (listing the supported ones); a tensor the
// architecture needs that the checkpoint lacks (a classifier's head may be absent: it is then created); a tensor
// whose shape disagrees with config.json.
std::shared_ptr<Transformer> load_transformer(const std::string& path, const LoadOptions& options);

// load_transformer() for decoders; an encoder directory is an error saying what it is.
std::shared_ptr<CausalLM> load_model(const std::string& directory, const LoadOptions& options);

// A causal LM of the family `config` names with uninitialised weights (for benchmarks and tests).
std::shared_ptr<CausalLM> make_model(const ModelConfig& config, const torch::TensorOptions& options);

}  // namespace peft
