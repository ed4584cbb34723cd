#include "models/causal_lm.h"

namespace peft {

torch::Tensor CausalLM::logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  return head()->forward(hidden_states(input_ids, attention_mask));
}

std::vector<std::pair<std::string, Projection>> CausalLM::projections() {
  std::vector<std::pair<std::string, Projection>> result;
  for (const auto& item : named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    if (auto projection = std::dynamic_pointer_cast<ProjectionImpl>(item.value())) {
      result.emplace_back(item.key(), Projection(projection));
    }
  }
  return result;
}

void CausalLM::freeze() {
  for (auto& parameter : parameters()) parameter.set_requires_grad(false);
}

}  // namespace peft
