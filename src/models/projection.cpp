#include "models/projection.h"

namespace peft {

ProjectionImpl::ProjectionImpl(int64_t in, int64_t out, bool with_bias, const torch::TensorOptions& options)
    : in_features(in), out_features(out) {
  // Weights are filled from a checkpoint; empty storage avoids initialising what is overwritten anyway.
  weight = register_parameter("weight", torch::empty({out, in}, options), /*requires_grad=*/false);
  if (with_bias) bias = register_parameter("bias", torch::empty({out}, options), /*requires_grad=*/false);
}

ProjectionImpl::ProjectionImpl(torch::Tensor shared_weight, torch::Tensor shared_bias)
    : in_features(shared_weight.size(1)), out_features(shared_weight.size(0)) {
  weight = register_parameter("weight", std::move(shared_weight), /*requires_grad=*/false);
  if (shared_bias.defined()) bias = register_parameter("bias", std::move(shared_bias), /*requires_grad=*/false);
}

torch::Tensor ProjectionImpl::forward(const torch::Tensor& input) {
  torch::Tensor x = input;
  for (auto& hook : hooks_) x = hook->on_input(x);
  torch::Tensor y = torch::nn::functional::linear(x, weight, bias);
  for (auto& hook : hooks_) y = hook->on_output(*this, x, y);
  return y;
}

void ProjectionImpl::merge_hooks() {
  torch::NoGradGuard no_grad;
  for (auto& hook : hooks_) {
    if (!hook->changes_input()) hook->merge_into(weight, bias);
  }
  for (auto& hook : hooks_) {
    if (hook->changes_input()) hook->merge_into(weight, bias);
  }
  hooks_.clear();
}

}  // namespace peft
