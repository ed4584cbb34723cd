// Counted FLOPs, from a model's shapes and the actual sequence lengths (a multiply-add is 2 FLOPs), the way the
// scaling-law literature counts them (Kaplan et al. 2020): 2 per weight of every matrix a token is multiplied by,
// plus attention's two products QKᵀ and AV, 4·T·S·(heads·head_dim) per layer for T queries over S keys (computed
// whole, as the tool does, not halved for causal masking). A causal LM's head is counted where the tool applies it:
// at the scored positions of a loss, at the last position of a generation step. A backward pass costs 2 per weight
// per token for the activation gradients wherever gradients flow and 2 more for each trained matrix's weight
// gradient; attention's backward is twice its forward. Elementwise work (norms, activations, (IA)³'s scales,
// biases), embedding lookups and the side network's own attention are not counted, nor is a custom TorchScript
// module's work outside its linear layers (a GRU's recurrences): the count is of matrix products.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace peft {

class Method;
class Model;

struct FlopCount {
  int64_t base_weights = 0;      // per token: the base model's linear layers but a causal LM's head
  int64_t head_weights = 0;      // per head position: a causal LM's head (tied to the embeddings or not)
  int64_t method_weights = 0;    // per token: the method's own matrices (Method::per_token_weights)
  int64_t layers = 0;            // attention layers of the base (0: a module whose attention is unknown)
  int64_t attention_width = 0;   // heads · head_dim
  int64_t virtual_tokens = 0;    // prompt tuning's positions before the real tokens
  int64_t prefix_positions = 0;  // prefix tuning's extra keys and values per layer
  bool trains_base = false;      // full fine-tuning: every base matrix gets a weight gradient
  bool backward_through_base = true;

  // One sequence of `tokens` real tokens whose head is applied at `head_positions` of them.
  double forward(int64_t tokens, int64_t head_positions) const;
  double training(int64_t tokens, int64_t head_positions) const;  // forward + backward
};

// The base model's count; call before a method is attached (its own matrices are added by with_method).
FlopCount count_flops(Model& model);
// `base` with `method` attached to `model` (virtual tokens and prefix positions are read from the model).
FlopCount with_method(FlopCount base, const Method& method, const Model& model);

// Where a loss applies the head in an example: its scored labels (after the shift).
int64_t head_positions(const Example& example);
// Loss passes over `examples` (their real tokens, the head at their scored positions).
double forward_flops(const FlopCount& count, const std::vector<Example>& examples);
// Generation without a key/value cache (eval/generate.h): every new token re-runs the whole sequence so far.
double generation_flops(const FlopCount& count, int64_t prompt_tokens, int64_t generated_tokens);

// "1.23e+12" style, for summaries.
std::string format_flops(double flops);

}  // namespace peft
