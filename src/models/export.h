// Writes a model as a complete Hugging Face model directory: config.json, model.safetensors and the base
// directory's tokenizer files. Used by peft-merge (a base with an adapter folded in) and by full fine-tuning.
#pragma once

#include <string>

#include <torch/torch.h>

namespace peft {

class Transformer;

// Tensors are those of the family's name table, cast to `dtype`. Biases that a method added to a bias-less
// family are declared in config.json (attention_bias / mlp_bias) and absent ones of the same group written as
// zeros; a bias the family's config cannot declare is an error. A sequence classifier is written as
// <Family>ForSequenceClassification with its labels. Every file is written atomically.
void save_model_directory(Transformer& model, const std::string& base_directory, const std::string& out_directory,
                          torch::Dtype dtype);

// The dtype the base checkpoint stores its weights in (that of its first floating-point tensor).
torch::Dtype stored_dtype(const std::string& base_directory);

}  // namespace peft
