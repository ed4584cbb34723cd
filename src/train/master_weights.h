// Float32 master copies of trainable tensors stored in 16 bits. BitFit's biases and full fine-tuning's weights
// are the base model's own tensors, so on a bfloat16 or float16 base they live in its dtype; an AdamW update
// smaller than half the 16-bit spacing (2^-8 relative for bfloat16) would round away there. The optimiser, the
// loss scaler, clipping, the data-parallel all-reduce and checkpoints work on float32 masters instead; after each
// step the masters are rounded into the model's tensors, which the forward pass uses (and which the saved adapter
// holds, so that it reproduces exactly the model that was trained and evaluated). Float32 tensors (every adapter's
// own parameters) are their own masters and cost nothing.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "peft/method.h"

namespace peft {

class MasterWeights {
 public:
  explicit MasterWeights(std::vector<TrainableParameter> model_parameters);

  // What the optimiser updates: float32 tensors named and ordered as the method's trainable parameters.
  const std::vector<TrainableParameter>& optimised() const { return optimised_; }
  std::vector<torch::Tensor> optimised_tensors() const;
  // Tensors that have a separate master, and their master bytes.
  int64_t separate_count() const { return static_cast<int64_t>(separate_.size()); }
  int64_t separate_bytes() const;

  // After each backward pass: adds each 16-bit gradient into its master's float32 gradient and frees it, so that
  // gradient accumulation over micro-batches sums in float32 too.
  void accumulate_gradients();
  // After an optimiser step or a checkpoint restore: the masters, rounded into the model's tensors.
  void masters_to_model();
  // After the model's tensors were set another way (initialisation from data, a broadcast): masters follow them.
  void model_to_masters();

 private:
  std::vector<TrainableParameter> model_;
  std::vector<TrainableParameter> optimised_;
  std::vector<size_t> separate_;  // indices whose master is a separate float32 tensor
};

}  // namespace peft
