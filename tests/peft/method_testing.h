// Helpers shared by the PEFT method tests: tiny fixture models, a fixed batch, and error capture.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/error.h"
#include "data/batch.h"
#include "models/loader.h"
#include "test_util.h"
#include "train/loss.h"

namespace peft::test {

inline std::shared_ptr<CausalLM> fixture_model(const std::string& name = "llama_gqa_tied",
                                               const std::string& dtype = "float32") {
  return load_model(fixture("llama/" + name), {dtype, "cpu"});
}

inline torch::Tensor sample_ids() { return torch::tensor({{1, 5, 9, 3, 7, 11, 2, 4}, {1, 8, 6, 10, 12, 3, 5, 9}}); }

// Logits of sample_ids() without autograd.
inline torch::Tensor logits(CausalLM& model) {
  torch::NoGradGuard no_grad;
  auto ids = sample_ids();
  return model.logits(ids, torch::ones_like(ids));
}

// Training-mode forward and backward of the next-token loss on sample_ids().
inline void backward_on_sample(CausalLM& model) {
  Batch batch;
  batch.input_ids = sample_ids();
  batch.attention_mask = torch::ones_like(batch.input_ids);
  batch.labels = batch.input_ids.clone();
  model.train();
  causal_lm_loss(model, batch).backward();
}

}  // namespace peft::test
