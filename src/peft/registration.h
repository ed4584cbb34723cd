// Methods add their parameters to base modules under fixed names (lora_A, ia3_l, ffn_adapter, ...). In a
// composition two methods could ask for the same name on the same module; this check turns that into a clear
// error instead of LibTorch's internal assertion.
#pragma once

#include <torch/torch.h>

#include <string>

#include "core/error.h"

namespace peft {

// Throws peft::Error when `owner` (at `owner_path` in the model) already has a parameter or submodule `name`.
inline void check_name_free(torch::nn::Module& owner, const std::string& owner_path, const std::string& name) {
  bool taken = owner.named_parameters(/*recurse=*/false).contains(name) || owner.named_children().contains(name);
  check(!taken, (owner_path.empty() ? name : owner_path + "." + name) +
                    " already exists: another method of the composition adapts the same " +
                    "module in the same way (give the methods disjoint targets)");
}

}  // namespace peft
