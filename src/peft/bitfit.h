// BitFit (Ben Zaken et al. 2022, "BitFit: Simple Parameter-efficient Fine-tuning for Transformer-based Masked
// Language-models"): train only bias vectors. HF PEFT has no BitFit, so the adapter format is our own in PEFT's
// two-file layout: peft_type "BITFIT", tensors keyed base_model.model.<module path>.bias (float32).
//
// biases: all    — the bias of every projection except the output head, and every LayerNorm bias (GPT-2,
//                  BERT). Llama's norms are RMSNorm without a bias, so there is nothing else to train there.
// biases: subset — the paper's subset, the query bias and the FFN intermediate bias (BERT's
//                  attention.self.query and intermediate.dense), which in Llama names is [q_proj, up_proj]
//                  and in GPT-2's [c_attn, c_fc] (its query bias is part of the fused q/k/v bias);
//                  target_modules chooses other projections with PEFT's matching rules.
// Projections that already have a bias (Qwen2's q/k/v) are unfrozen and trained in place. Bias-less ones get
// a zero-initialised bias registered as `bias` (an exact no-op at the start), in the weight's dtype because
// linear() needs one dtype (the trainer runs float32 on CPU; a bfloat16 base trains bfloat16 biases).
// Merging has nothing to fold: the biases are part of the model and merely become frozen.
#pragma once

#include <optional>

#include "config/section.h"
#include "peft/method.h"

namespace peft {

struct BitFitOptions : MethodOptions {
  std::string biases = "all";                 // all | subset
  StringOrList target_modules{true, "", {}};  // used by `subset`; empty: the family's (Llama [q_proj, up_proj])
  // From a saved adapter: where the training run added biases; attach() checks the model agrees, so that an
  // adapter whose biases were added is not loaded over a model's own biases (or the reverse).
  std::optional<std::vector<std::string>> expected_added_biases;

  void read(Section& section) override;
  static std::shared_ptr<MethodOptions> from_adapter_config(const nlohmann::json& config);
};

std::unique_ptr<Method> make_bitfit(std::shared_ptr<const MethodOptions> options);

}  // namespace peft
