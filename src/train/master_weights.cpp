#include "train/master_weights.h"

namespace peft {

MasterWeights::MasterWeights(std::vector<TrainableParameter> model_parameters) : model_(std::move(model_parameters)) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < model_.size(); ++i) {
    const auto& parameter = model_[i];
    auto dtype = parameter.tensor.scalar_type();
    if (dtype != torch::kBFloat16 && dtype != torch::kHalf) {
      optimised_.push_back(parameter);
      continue;
    }
    auto master = parameter.tensor.detach().to(torch::kFloat, /*non_blocking=*/false, /*copy=*/true);
    master.set_requires_grad(true);  // a leaf of no graph: it only carries the gradient the optimiser reads
    optimised_.push_back({parameter.name, master, parameter.weight_decay});
    separate_.push_back(i);
  }
}

std::vector<torch::Tensor> MasterWeights::optimised_tensors() const {
  std::vector<torch::Tensor> out;
  out.reserve(optimised_.size());
  for (const auto& parameter : optimised_) out.push_back(parameter.tensor);
  return out;
}

int64_t MasterWeights::separate_bytes() const {
  int64_t bytes = 0;
  for (size_t i : separate_) bytes += optimised_[i].tensor.numel() * 4;
  return bytes;
}

void MasterWeights::accumulate_gradients() {
  torch::NoGradGuard no_grad;
  for (size_t i : separate_) {
    auto& model_grad = model_[i].tensor.mutable_grad();
    if (!model_grad.defined()) continue;
    auto& master_grad = optimised_[i].tensor.mutable_grad();
    if (master_grad.defined()) {
      master_grad.add_(model_grad);
    } else {
      master_grad = model_grad.to(torch::kFloat);
    }
    model_grad = torch::Tensor();
  }
}

void MasterWeights::masters_to_model() {
  torch::NoGradGuard no_grad;
  for (size_t i : separate_) model_[i].tensor.copy_(optimised_[i].tensor);
}

void MasterWeights::model_to_masters() {
  torch::NoGradGuard no_grad;
  for (size_t i : separate_) optimised_[i].tensor.copy_(model_[i].tensor);
}

}  // namespace peft
