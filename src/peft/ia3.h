// (IA)³ (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than In-Context
// Learning"), with HF PEFT's semantics and adapter format: a targeted projection that is not feed-forward scales
// its output by a learned vector l (stored [out, 1]); a feed-forward one scales its input (stored [1, in]), which
// for Llama's down_proj is the SwiGLU intermediate after the activation. l starts at ones (an exact no-op), lives
// in float32 and is exempt from weight decay. Merging folds l into the weights: W ← diag(l)·W (and b ← l ⊙ b)
// for output scaling, W ← W·diag(l) for input scaling.
#pragma once

#include <optional>

#include "config/section.h"
#include "peft/method.h"

namespace peft {

struct Ia3Options : MethodOptions {
  // Left out, both take the family's PEFT defaults (Llama: [k_proj, v_proj, down_proj] and [down_proj]; GPT-2:
  // [c_attn, mlp.c_proj] and [mlp.c_proj]); feedforward_modules then keeps only defaults among the targets.
  StringOrList target_modules{true, "", {}};
  std::optional<StringOrList> feedforward_modules;  // must be a subset of the targets
  StringOrList exclude_modules{true, "", {}};
  bool init_ia3_weights = true;  // true: ones; false: N(0, 1) as PEFT does (for tests only)

  void read(Section& section) override;
  static std::shared_ptr<MethodOptions> from_adapter_config(const nlohmann::json& config);
};

std::unique_ptr<Method> make_ia3(std::shared_ptr<const MethodOptions> options);

}  // namespace peft
