// LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"), with HF PEFT's semantics and
// adapter format: y = W0·x + s·B·A·dropout(x), A (r, in) kaiming-uniform(a=√5), B (out, r) zero, s = α/r
// (rsLoRA: α/√r). Merging folds s·B·A into W0. Variants, as PEFT computes them:
// - DoRA (use_dora): W' = m · (W0 + s·B·A) / ‖W0 + s·B·A‖ per output row, m trained (initialised to the norms),
//   the norm detached from the gradient; saved as `lora_magnitude_vector` [out].
// - init_lora_weights: gaussian (A ~ N(0, 1/r)), pissa / pissa_niter_N (A, B from the top-r singular triplets
//   of W0, exact or randomised), olora (from W0's QR); these two move s·B·A out of W0, and the saved adapter is
//   converted to a plain LoRA of rank 2r on the original W0 (PEFT's path_initial_model_for_weight_conversion).
#pragma once

#include "config/section.h"
#include "peft/method.h"

namespace peft {

struct LoraOptions : MethodOptions {
  int64_t r = 8;
  double lora_alpha = 8.0;
  double lora_dropout = 0.0;
  StringOrList target_modules{true, "", {}};  // empty: the family's PEFT default ([q_proj, v_proj], [c_attn], ...)
  StringOrList exclude_modules{true, "", {}};
  bool use_rslora = false;
  std::string bias = "none";               // none | all | lora_only
  // true (kaiming A, zero B) | gaussian (A ~ N(0, 1/r)) | false (both random) | pissa | pissa_niter_N | olora
  std::string init_lora_weights = "true";
  bool use_dora = false;

  void read(Section& section) override;
  static std::shared_ptr<MethodOptions> from_adapter_config(const nlohmann::json& config);
  double scale() const;
  // PiSSA and OLoRA start from a factorisation of W0 and take s·B·A out of it.
  bool moves_base_weights() const { return init_lora_weights.rfind("pissa", 0) == 0 || init_lora_weights == "olora"; }
};

std::unique_ptr<Method> make_lora(std::shared_ptr<const MethodOptions> options);

}  // namespace peft
