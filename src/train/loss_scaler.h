// Dynamic loss scaling for a float16 base (what torch.cuda.amp.GradScaler does): small gradients flowing back
// through float16 activations would round to zero, so the loss is multiplied by a large scale before backward and
// the float32 gradients divided by it before the optimiser step. A step whose gradients overflowed is skipped and
// the scale halved; after `growth_interval` good steps in a row it doubles. bfloat16 and float32 need none.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace peft {

class LossScaler {
 public:
  explicit LossScaler(bool enabled, double initial_scale = 65536.0, int64_t growth_interval = 2000);

  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  // Good steps since the scale last changed (a checkpoint keeps it, with the scale).
  int64_t good_steps() const { return good_steps_; }
  void restore(double scale, int64_t good_steps);

  // The loss to differentiate: loss × scale (the loss itself when disabled).
  torch::Tensor scaled(const torch::Tensor& loss) const;
  // Divides every gradient by the scale and updates the scale; false when a gradient was NaN/Inf, in which case
  // the step must be skipped (the gradients are then meaningless). Always true when disabled.
  bool unscale_and_update(const std::vector<torch::Tensor>& parameters);

 private:
  bool enabled_;
  double scale_;
  int64_t growth_interval_;
  int64_t good_steps_ = 0;
};

}  // namespace peft
