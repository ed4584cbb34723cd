#include "models/causal_lm.h"

namespace peft {

torch::Tensor CausalLM::logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  return head()->forward(hidden_states(input_ids, attention_mask));
}

}  // namespace peft
