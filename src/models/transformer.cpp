#include "models/transformer.h"

namespace peft {

std::vector<std::pair<std::string, Projection>> Transformer::projections() {
  std::vector<std::pair<std::string, Projection>> result;
  for (const auto& item : named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    if (auto projection = std::dynamic_pointer_cast<ProjectionImpl>(item.value())) {
      result.emplace_back(item.key(), Projection(projection));
    }
  }
  return result;
}

void Transformer::freeze() {
  for (auto& parameter : parameters()) parameter.set_requires_grad(false);
}

}  // namespace peft
