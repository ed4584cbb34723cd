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
  torch::Tensor y = quantized_ ? quantized_linear(x, quantized_) : torch::nn::functional::linear(x, weight, bias);
  if (quantized_ && bias.defined()) y = y + bias;
  for (auto& hook : hooks_) y = hook->on_output(*this, x, y);
  return y;
}

void ProjectionImpl::merge_hooks() {
  torch::NoGradGuard no_grad;
  if (quantized_) dequantize();
  for (auto& hook : hooks_) {
    if (!hook->changes_input()) hook->merge_into(weight, bias);
  }
  for (auto& hook : hooks_) {
    if (hook->changes_input()) hook->merge_into(weight, bias);
  }
  hooks_.clear();
}

void ProjectionImpl::set_quantized(std::shared_ptr<const QuantizedWeight> quantized) {
  quantized_ = std::move(quantized);
  if (parameters_.contains("weight")) parameters_.erase("weight");  // already gone when re-quantized
  weight = torch::empty({0}, weight.options().requires_grad(false));
}

void ProjectionImpl::dequantize() {
  if (!quantized_) return;
  auto dense = quantized_->dequantize(weight.scalar_type()).to(weight.device());
  quantized_.reset();
  weight = register_parameter("weight", dense, /*requires_grad=*/false);
}

torch::Tensor ProjectionImpl::dense_weight() const {
  if (!quantized_) return weight;
  return quantized_->dequantize(weight.scalar_type()).to(weight.device());
}

DenseWeights::DenseWeights(torch::nn::Module& module) {
  for (const auto& item : module.named_modules()) {
    auto projection = std::dynamic_pointer_cast<ProjectionImpl>(item.value());
    if (!projection || !projection->quantized()) continue;
    restore_.emplace_back(Projection(projection), projection->quantized());
    projection->dequantize();
  }
}

DenseWeights::~DenseWeights() {
  for (auto& [projection, quantized] : restore_) projection->set_quantized(quantized);
}

}  // namespace peft
