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

torch::Tensor CausalLM::decode(const torch::Tensor&, const torch::Tensor&, KvCache&) {
  throw Error("generation with a KV cache is not available for " + description());
}

BackboneStates CausalLM::backbone_states(const torch::Tensor&, const torch::Tensor&, const std::vector<int64_t>&) {
  no_side_network(config_);
}

std::shared_ptr<BlockStack> CausalLM::make_block_stack(const ModelConfig&, const torch::TensorOptions&) const {
  no_side_network(config_);
}

StackLayout CausalLM::stack_layout() const { no_side_network(config_); }

void CausalLM::untie_head() {
  throw Error(config_.architecture + ": its output head cannot be untied from the embeddings");
}

Projection CausalLM::register_untied_head(const Projection& tied) {
  check(config_.tie_word_embeddings, "internal: " + config_.architecture + "'s head is not tied");
  auto head = register_module("lm_head", Projection(tied->weight.detach().clone(), torch::Tensor()));
  config_.tie_word_embeddings = false;
  return head;
}

}  // namespace peft
