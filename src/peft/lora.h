// LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"), with HF PEFT's semantics and
// adapter format: y = W0·x + s·B·A·dropout(x), A (r, in) kaiming-uniform(a=√5), B (out, r) zero, s = α/r
// (rsLoRA: α/√r). Merging folds s·B·A into W0.
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
  std::string init_lora_weights = "true";  // true (kaiming A, zero B) | gaussian (A ~ N(0, 1/r)) | false

  void read(Section& section) override;
  static std::shared_ptr<MethodOptions> from_adapter_config(const nlohmann::json& config);
  double scale() const;
};

std::unique_ptr<Method> make_lora(std::shared_ptr<const MethodOptions> options);

}  // namespace peft
