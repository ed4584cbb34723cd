#include "peft/registry.h"

#include "core/error.h"
#include "core/strings.h"
#include "peft/adapter.h"
#include "peft/bitfit.h"
#include "peft/full.h"
#include "peft/ia3.h"
#include "peft/lora.h"
#include "peft/lst.h"
#include "peft/prefix_tuning.h"
#include "peft/prompt_tuning.h"

namespace peft {

const std::vector<MethodEntry>& method_registry() {
  static const std::vector<MethodEntry> methods = {
      {"lora", "LORA", [] { return std::make_shared<LoraOptions>(); }, LoraOptions::from_adapter_config, make_lora},
      {"ia3", "IA3", [] { return std::make_shared<Ia3Options>(); }, Ia3Options::from_adapter_config, make_ia3},
      {"bitfit", "BITFIT", [] { return std::make_shared<BitFitOptions>(); }, BitFitOptions::from_adapter_config,
       make_bitfit},
      {"adapter", "BOTTLENECK_ADAPTER", [] { return std::make_shared<AdapterOptions>(); },
       AdapterOptions::from_adapter_config, make_adapter},
      {"prompt_tuning", "PROMPT_TUNING", [] { return std::make_shared<PromptTuningOptions>(); },
       PromptTuningOptions::from_adapter_config, make_prompt_tuning},
      {"prefix_tuning", "PREFIX_TUNING", [] { return std::make_shared<PrefixTuningOptions>(); },
       PrefixTuningOptions::from_adapter_config, make_prefix_tuning},
      {"lst", "LST", [] { return std::make_shared<LstOptions>(); }, LstOptions::from_adapter_config, make_lst,
       "replaces the model's block stack with a side network and cannot be combined with other methods"},
      // No adapter format: full fine-tuning writes a whole model directory.
      {"full", "", [] { return std::make_shared<FullOptions>(); }, nullptr, make_full,
       "trains every parameter and cannot be combined with other methods"},
  };
  return methods;
}

namespace {
std::vector<std::string> method_names() {
  std::vector<std::string> names;
  for (const auto& entry : method_registry()) names.push_back(entry.name);
  return names;
}
}  // namespace

const MethodEntry& find_method(const std::string& name) {
  for (const auto& entry : method_registry()) {
    if (entry.name == name) return entry;
  }
  std::string hint = closest_match(name, method_names());
  throw Error("unknown PEFT method '" + printable(name) + "'" +
              (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; available: " + join(method_names(), ", "));
}

const MethodEntry& find_method_by_peft_type(const std::string& peft_type) {
  for (const auto& entry : method_registry()) {
    if (!entry.peft_type.empty() && entry.peft_type == peft_type) return entry;
  }
  std::vector<std::string> types;
  for (const auto& entry : method_registry()) {
    if (!entry.peft_type.empty()) types.push_back(entry.peft_type);
  }
  types.push_back(kCompositionPeftType);
  throw Error("adapter_config.json: peft_type '" + printable(peft_type) +
              "' is not supported; supported: " + join(types, ", "));
}

}  // namespace peft
