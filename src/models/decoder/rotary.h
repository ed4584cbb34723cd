// Rotary position embeddings as transformers computes them (modeling_rope_utils.py): inverse frequencies for the
// rope types default, linear, llama3, yarn and longrope, cos/sin tables in float32 scaled by the type's attention
// factor, and the rotation itself in the rotate_half convention, over the first RopeSpec::dim dimensions of a head
// (partial rotary: the rest pass through).
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

#include "models/model_config.h"

namespace peft {

// The inverse frequencies (dim / 2) in float32; longrope takes its long factors when `long_context`.
torch::Tensor inverse_frequencies(const RopeSpec& spec, bool long_context);

// cos/sin tables (T, dim) for positions 0..T-1, cached for the longest length seen.
class RotaryTables {
 public:
  explicit RotaryTables(RopeSpec spec) : spec_(std::move(spec)) {}
  // `span` is how far the pass's positions reach (largest position + 1): longrope switches to its long factors
  // beyond the original context, as transformers decides per forward pass.
  std::pair<torch::Tensor, torch::Tensor> get(int64_t length, int64_t span, const torch::Device& device,
                                              torch::Dtype dtype);
  const RopeSpec& spec() const { return spec_; }

 private:
  RopeSpec spec_;
  bool long_context_ = false;
  torch::Tensor cos_, sin_;
};

// x (..., d_h) rotated by cos/sin (..., dim) over its first dim dimensions; the others pass unchanged.
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace peft
