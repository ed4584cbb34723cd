#include "models/transformer.h"

#include "core/error.h"
#include "models/registry.h"

namespace peft {

std::vector<std::string> Transformer::default_targets(DefaultTargets which) const {
  return family_of(config_.architecture).default_targets(config_, which);
}

std::vector<std::string> Transformer::tensor_names() const {
  return family_of(config_.architecture).tensor_names(config_);
}

Transformer::PrefixedInputs Transformer::prepend_input_prefix(const torch::Tensor& x,
                                                              const torch::Tensor& attention_mask,
                                                              const torch::Tensor& token_type_ids) {
  if (!hooks.input_prefix) return {x, attention_mask, token_type_ids, 0};
  int64_t batch = x.size(0);
  auto prefix = hooks.input_prefix->prefix(batch).to(x.scalar_type());  // (B, l, d)
  int64_t l = prefix.size(1);
  PrefixedInputs out{torch::cat({prefix, x}, 1),
                     torch::cat({torch::ones({batch, l}, attention_mask.options()), attention_mask}, 1),
                     token_type_ids, l};
  // Virtual tokens have token type 0 (as PEFT passes them to HF).
  if (token_type_ids.defined()) {
    out.token_type_ids = torch::cat({torch::zeros({batch, l}, token_type_ids.options()), token_type_ids}, 1);
  }
  return out;
}

void Transformer::check_sequence_length(int64_t length, int64_t virtual_tokens, int64_t prefix_length,
                                        const char* limit_key) const {
  check(prefix_length + length <= config_.max_position_embeddings,
        "a sequence of " + std::to_string(length - virtual_tokens) + " tokens" +
            (virtual_tokens ? " + " + std::to_string(virtual_tokens) + " virtual tokens" : std::string()) +
            (prefix_length ? " after a " + std::to_string(prefix_length) + "-token prefix" : std::string()) +
            " exceeds the model's " + limit_key + " " + std::to_string(config_.max_position_embeddings));
}

}  // namespace peft
