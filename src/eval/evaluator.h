// Held-out loss: mean negative log-likelihood per scored token over a data set, and its perplexity.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "data/dataset.h"

namespace peft {

class Model;

struct ExampleLoss {
  int64_t index = 0;
  int64_t tokens = 0;  // scored tokens
  double loss = 0.0;   // mean NLL over them (0 when none are scored)
};

struct EvalResult {
  double loss = 0.0;  // mean NLL per scored token over the whole set
  double perplexity = 0.0;
  int64_t tokens = 0;
  int64_t examples = 0;
  std::vector<ExampleLoss> per_example;
};

// Runs in eval mode under no-grad, batches of `batch_size`, and restores the model's training mode.
EvalResult evaluate(Model& model, const std::vector<Example>& examples, int64_t batch_size, int64_t pad_id,
                    const torch::Device& device);

}  // namespace peft
