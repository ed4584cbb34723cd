#include "models/registry.h"

#include <algorithm>

#include "core/error.h"
#include "core/strings.h"

namespace peft {

// Each defined in its folder's family.cpp.
ModelFamily llama_family();
ModelFamily gemma_family();
ModelFamily phi3_family();
ModelFamily gpt2_family();
ModelFamily bert_family();

const std::vector<ModelFamily>& model_families() {
  static const std::vector<ModelFamily> families = {llama_family(), gemma_family(), phi3_family(), gpt2_family(),
                                                    bert_family()};
  return families;
}

std::vector<std::string> supported_architectures() {
  std::vector<std::string> all;
  for (const auto& family : model_families()) {
    all.insert(all.end(), family.architectures.begin(), family.architectures.end());
  }
  return all;
}

const ModelFamily& family_of(const std::string& architecture, const std::string& file) {
  for (const auto& family : model_families()) {
    const auto& names = family.architectures;
    if (std::find(names.begin(), names.end(), architecture) != names.end()) return family;
  }
  throw Error(file + ": unsupported architecture '" + architecture + "'; supported: " +
              join(supported_architectures(), ", "));
}

}  // namespace peft
