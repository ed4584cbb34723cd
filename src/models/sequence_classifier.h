// The interface of encoder families with a sequence-classification head (BERT, RoBERTa): class logits for a
// batch of token sequences. The head trains with every PEFT method, as PEFT's modules_to_save does for SEQ_CLS
// models, and is saved with the adapter (peft/modules_to_save.h).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/transformer.h"

namespace peft {

class SequenceClassifier : public Transformer {
 public:
  SequenceClassifier(ModelConfig config, int64_t num_labels)
      : Transformer(std::move(config)), num_labels_(num_labels) {}

  // (B, num_labels) logits for input_ids (B, T), attention_mask (B, T) (1 = token) and token_type_ids (B, T)
  // (0 for the first text, 1 for the second; undefined = all 0).
  virtual torch::Tensor classify(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                 const torch::Tensor& token_type_ids) = 0;

  int64_t num_labels() const { return num_labels_; }

  // The head's module path ("classifier"), always trained and saved with the adapter.
  virtual std::string head_module() const = 0;
  // Modules the checkpoint lacked and the loader left freshly initialised (BERT's pooler in a checkpoint without
  // one): trained and saved like the head, so that the adapter reproduces the run.
  std::vector<std::string> created_modules;

 protected:
  int64_t num_labels_;
};

}  // namespace peft
