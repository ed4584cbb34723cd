#include "train/loss_scaler.h"

#include <cmath>

namespace peft {

LossScaler::LossScaler(bool enabled, double initial_scale, int64_t growth_interval)
    : enabled_(enabled), scale_(enabled ? initial_scale : 1.0), growth_interval_(growth_interval) {}

void LossScaler::restore(double scale, int64_t good_steps) {
  if (!enabled_) return;
  scale_ = scale;
  good_steps_ = good_steps;
}

torch::Tensor LossScaler::scaled(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }

bool LossScaler::unscale_and_update(const std::vector<torch::Tensor>& parameters) {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  // One host read for all gradients, not one per parameter (each is a device synchronisation on a GPU).
  std::vector<torch::Tensor> all_finite;
  for (const auto& parameter : parameters) {
    const auto& grad = parameter.grad();
    if (!grad.defined()) continue;
    grad.div_(scale_);
    all_finite.push_back(torch::isfinite(grad).all());
  }
  bool finite = all_finite.empty() || torch::stack(all_finite).all().item<bool>();
  if (!finite) {
    scale_ = std::max(scale_ * 0.5, 1.0);
    good_steps_ = 0;
  } else if (++good_steps_ >= growth_interval_) {
    scale_ *= 2.0;
    good_steps_ = 0;
  }
  return finite;
}

}  // namespace peft
