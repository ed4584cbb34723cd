// The one explicit list of PEFT methods (no static self-registration: a static library would drop it).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "peft/method.h"

namespace peft {

struct MethodEntry {
  std::string name;       // the YAML `peft.method` value, e.g. "lora"
  std::string peft_type;  // adapter_config.json "peft_type", e.g. "LORA"; empty when it writes no adapter
  std::function<std::shared_ptr<MethodOptions>()> make_options;
  // Options back from a saved adapter_config.json (throws peft::Error on a bad config).
  std::function<std::shared_ptr<MethodOptions>(const nlohmann::json& adapter_config)> options_from_adapter_config;
  std::function<std::unique_ptr<Method>(std::shared_ptr<const MethodOptions>)> make_method;
  // Why the method cannot be one member of a composition; empty when it can.
  std::string standalone_reason = {};
};

const std::vector<MethodEntry>& method_registry();

// The peft_type of an adapter that holds several methods applied together (peft/composition.h).
inline constexpr const char* kCompositionPeftType = "COMPOSITION";

// One method chosen by a run config: its registry name and typed options.
struct MethodChoice {
  std::string name;
  std::shared_ptr<MethodOptions> options;
  // PEFT's modules_to_save, for any method (peft/modules_to_save.h); in a composition, the union of its members'.
  std::vector<std::string> modules_to_save = {};
};

// Throws peft::Error "unknown PEFT method 'lroa' (did you mean 'lora'?); available: lora, ..." .
const MethodEntry& find_method(const std::string& name);
const MethodEntry& find_method_by_peft_type(const std::string& peft_type);

}  // namespace peft
