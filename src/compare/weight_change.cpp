#include "compare/weight_change.h"

#include <algorithm>
#include <limits>

#include "models/model.h"

namespace peft {

int64_t WeightChange::rank_median() const {
  if (ranks.empty()) return 0;
  auto sorted = ranks;
  std::sort(sorted.begin(), sorted.end());
  return sorted[sorted.size() / 2];
}

int64_t WeightChange::rank_max() const { return ranks.empty() ? 0 : *std::max_element(ranks.begin(), ranks.end()); }

namespace {

// The spacing of floating-point numbers just above 1 in a dtype.
double epsilon_of(torch::ScalarType type) {
  switch (type) {
    case torch::kDouble:
      return std::numeric_limits<double>::epsilon();
    case torch::kHalf:
      return 0x1p-10;
    case torch::kBFloat16:
      return 0x1p-7;
    default:
      return std::numeric_limits<float>::epsilon();
  }
}

}  // namespace

int64_t numerical_rank(const torch::Tensor& delta, const torch::Tensor& after) {
  torch::NoGradGuard no_grad;
  auto values = torch::linalg_svdvals(delta.detach().to(torch::kCPU, torch::kDouble));
  if (values.numel() == 0) return 0;
  double epsilon = epsilon_of(after.scalar_type());
  double largest = values.max().item<double>();
  double tolerance = std::max(largest * static_cast<double>(std::max(delta.size(0), delta.size(1))) * epsilon,
                              epsilon * after.detach().to(torch::kDouble).norm().item<double>());
  return (values > tolerance).sum().item<int64_t>();
}

WeightChange weight_change(Model& before, Model& after) {
  torch::NoGradGuard no_grad;
  WeightChange change;
  auto base = before.named_parameters();
  for (const auto& item : after.named_parameters()) {
    const auto* original = base.find(item.key());
    if (original == nullptr) continue;  // the method's own tensors (lora_A, ...), left behind after a merge
    auto now = item.value().detach().to(torch::kCPU, torch::kDouble);
    auto delta = now - original->detach().to(torch::kCPU, torch::kDouble);
    int64_t differing = (delta != 0).sum().item<int64_t>();
    change.changed += differing;
    if (differing > 0 && delta.dim() == 2) change.ranks.push_back(numerical_rank(delta, item.value()));
  }
  for (auto& [path, projection] : after.projections()) {
    if (projection->bias.defined() && base.find(path + ".bias") == nullptr) {
      change.changed += (projection->bias.detach() != 0).sum().item<int64_t>();
    }
  }
  return change;
}

}  // namespace peft
