#include "models/causal_lm.h"

#include "core/error.h"

namespace peft {
namespace {

[[noreturn]] void no_side_network(const ModelConfig& config) {
  throw Error("lst: Ladder Side-Tuning is not available for " + config.architecture +
              " (its family has no side-network blocks)");
}

}  // namespace

torch::Tensor CausalLM::logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  return head_logits(hidden_states(input_ids, attention_mask));
}

torch::Tensor CausalLM::head_logits(const torch::Tensor& hidden) {
  auto logits = head()->forward(hidden);
  double cap = config_.final_logit_softcap;
  return cap > 0 ? torch::tanh(logits / cap) * cap : logits;
}

BackboneStates CausalLM::backbone_states(const torch::Tensor&, const torch::Tensor&, const std::vector<int64_t>&) {
  no_side_network(config_);
}

std::shared_ptr<BlockStack> CausalLM::make_block_stack(const ModelConfig&, const torch::TensorOptions&) const {
  no_side_network(config_);
}

StackLayout CausalLM::stack_layout() const { no_side_network(config_); }

}  // namespace peft
