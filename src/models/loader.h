// Builds a model of the family config.json names and fills it from the directory's safetensors weights.
#pragma once

#include <memory>
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
};

// The loaded model is frozen (no parameter requires grad). Throws peft::Error naming the file for: a missing
// directory, config.json or weights; an unsupported architecture (listing the supported ones); a tensor the
// architecture needs that the checkpoint lacks (a classifier's head may be absent: it is then created); a tensor
// whose shape disagrees with config.json.
std::shared_ptr<Transformer> load_transformer(const std::string& directory, const LoadOptions& options);

// load_transformer() for decoders; an encoder directory is an error saying what it is.
std::shared_ptr<CausalLM> load_model(const std::string& directory, const LoadOptions& options);

// A causal LM of the family `config` names with uninitialised weights (for benchmarks and tests).
std::shared_ptr<CausalLM> make_model(const ModelConfig& config, const torch::TensorOptions& options);

}  // namespace peft
