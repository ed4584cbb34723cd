#include "peft/method.h"

namespace peft {

int64_t Method::per_token_weights() const {
  int64_t weights = 0;
  for (const auto& parameter : trainable_parameters()) {
    if (parameter.tensor.dim() == 2) weights += parameter.tensor.numel();
  }
  return weights;
}

}  // namespace peft
