#include "eval/flops.h"

#include <cstdio>

#include "models/causal_lm.h"
#include "models/transformer.h"
#include "peft/method.h"

namespace peft {

double FlopCount::forward(int64_t tokens, int64_t head_positions) const {
  double t = static_cast<double>(tokens + virtual_tokens);
  double keys = t + static_cast<double>(prefix_positions);
  double weights = static_cast<double>(base_weights + method_weights);
  return 2.0 * t * weights + 2.0 * static_cast<double>(head_positions * head_weights) +
         4.0 * static_cast<double>(layers) * t * keys * static_cast<double>(attention_width);
}

double FlopCount::training(int64_t tokens, int64_t head_positions) const {
  double t = static_cast<double>(tokens + virtual_tokens);
  double keys = t + static_cast<double>(prefix_positions);
  double attention = 4.0 * static_cast<double>(layers) * t * keys * static_cast<double>(attention_width);
  double head = 2.0 * static_cast<double>(head_positions * head_weights);
  // Weight gradients of the trained matrices (full fine-tuning: the head's too) ...
  double backward =
      2.0 * t * static_cast<double>(method_weights + (trains_base ? base_weights : 0)) + (trains_base ? head : 0.0);
  // ... and activation gradients wherever gradients flow.
  if (backward_through_base) {
    backward += 2.0 * t * static_cast<double>(base_weights + method_weights) + head + 2.0 * attention;
  } else {
    backward += 2.0 * t * static_cast<double>(method_weights);
  }
  return forward(tokens, head_positions) + backward;
}

FlopCount count_flops(Model& model) {
  FlopCount count;
  bool causal = dynamic_cast<CausalLM*>(&model) != nullptr;
  for (auto& [path, projection] : model.projections()) {
    bool head = causal && model.is_output_head(path);
    (head ? count.head_weights : count.base_weights) += projection->in_features * projection->out_features;
  }
  const auto& c = model.config();
  // A head tied to the embeddings is no module of its own.
  if (causal && count.head_weights == 0) count.head_weights = c.hidden_size * c.vocab_size;
  if (dynamic_cast<Transformer*>(&model)) {
    count.layers = c.num_hidden_layers;
    count.attention_width = c.num_attention_heads * c.head_dim;
  }
  return count;
}

FlopCount with_method(FlopCount base, const Method& method, const Model& model) {
  base.method_weights = method.per_token_weights();
  base.virtual_tokens = model.virtual_tokens();
  base.prefix_positions = model.prefix_positions();
  base.trains_base = method.writes_model();
  base.backward_through_base = method.backpropagates_through_base();
  return base;
}

int64_t head_positions(const Example& example) {
  int64_t scored = 0;
  for (size_t t = 1; t < example.labels.size(); ++t) scored += example.labels[t] != kIgnoreIndex;
  return scored;
}

double forward_flops(const FlopCount& count, const std::vector<Example>& examples) {
  double total = 0.0;
  for (const auto& example : examples) {
    total += count.forward(static_cast<int64_t>(example.input_ids.size()), head_positions(example));
  }
  return total;
}

double generation_flops(const FlopCount& count, int64_t prompt_tokens, int64_t generated_tokens) {
  double total = 0.0;
  for (int64_t step = 0; step < generated_tokens; ++step) total += count.forward(prompt_tokens + step, 1);
  return total;
}

std::string format_flops(double flops) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g", flops);
  return text;
}

}  // namespace peft
