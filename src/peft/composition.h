// Composition: several methods applied to one model together, e.g. LoRA on attention + BitFit, a parallel
// adapter + (IA)³, or (with prefix tuning) MAM = prefix tuning + a parallel FFN adapter. Methods attach in list
// order and no two may create or train the same parameter. One adapter directory holds them all:
// adapter_model.safetensors has every method's tensors under its own keys, and adapter_config.json is
// {"peft_type": "COMPOSITION", "methods": [each method's own adapter_config, in order], ...}
// (docs/ADAPTER_FORMATS.md).
#pragma once

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "peft/method.h"
#include "peft/registry.h"

namespace peft {

// The run's method: the single one chosen, or a composition of several in list order.
std::unique_ptr<Method> make_methods(const std::vector<MethodChoice>& choices);

// The (unattached) method or composition a saved adapter_config.json describes. Throws peft::Error for a
// missing or unsupported peft_type and for invalid settings.
std::unique_ptr<Method> method_from_adapter_config(const nlohmann::json& config);

}  // namespace peft
