// What a method changed in the model it was merged into: how many parameters differ from the base, and the
// numerical rank of each changed matrix's ΔW = W_after − W_before (the "rank of the change" that LoRA bounds and
// (IA)³ does not).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace peft {

class Model;

struct WeightChange {
  int64_t changed = 0;         // parameters (elements) that differ from the base, a bias the base lacked counted
  std::vector<int64_t> ranks;  // one per changed matrix (2-D tensor), in model order
  int64_t rank_median() const;
  int64_t rank_max() const;
};

// Singular values of `delta` (computed in float64) above the larger of NumPy's default tolerance
// (σ_max · max(m, n) · ε) and the rounding noise of storing `after` (ε · ‖after‖_F, with ε the epsilon of after's
// dtype): a difference no bigger than rounding is no direction of change.
int64_t numerical_rank(const torch::Tensor& delta, const torch::Tensor& after);

// Compares `after` (trained, merged) with `before` (the base as loaded), parameter by parameter name; a linear
// layer of `after` with a bias that `before` lacks (BitFit's added biases) counts that bias's non-zero elements.
WeightChange weight_change(Model& before, Model& after);

}  // namespace peft
