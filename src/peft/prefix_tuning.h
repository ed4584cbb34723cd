// Prefix tuning (Li & Liang 2021, "Prefix-Tuning: Optimizing Continuous Prompts for Generation"), with HF PEFT's
// layout: every attention layer i gets l key and l value vectors per key/value head, K' = [P_k; K],
// V' = [P_v; V], inserted after RoPE and never rotated, visible to every query (the padding mask never hides
// them). Under GQA the prefix has n_kv heads, d_kv = n_kv·d_h.
//
// The stored prefix P is [l, 2·L·d_kv]; column block 2i holds layer i's keys and block 2i+1 its values, each
// block laid out (n_kv, d_h) (HF's view(l, 2L, n_kv, d_h)). HF PEFT's format: tensor `prompt_embeddings`,
// peft_type PREFIX_TUNING.
//
// prefix_projection: true trains the paper's reparameterisation instead of P directly,
// P = W2·tanh(W1·E + b1) + b2 with E (l, d), W1 (k, d), W2 (2·L·d_kv, k), k = encoder_hidden_size. On save the
// MLP is evaluated once and only P is written (HF PEFT loads such a file with inference_mode: true as the plain
// table). Init as HF PEFT's PrefixEncoder: P (or E) ~ N(0, 1), the MLP as torch's Linear.
#pragma once

#include "config/section.h"
#include "peft/method.h"

namespace peft {

struct PrefixTuningOptions : MethodOptions {
  int64_t num_virtual_tokens = 20;
  bool prefix_projection = false;
  int64_t encoder_hidden_size = 0;  // k of the MLP; 0 = the model's hidden size
  // From a saved adapter: the collapsed table of this width is loaded; no MLP.
  int64_t expected_width = 0;

  void read(Section& section) override;
  static std::shared_ptr<MethodOptions> from_adapter_config(const nlohmann::json& config);
};

std::unique_ptr<Method> make_prefix_tuning(std::shared_ptr<const MethodOptions> options);

}  // namespace peft
