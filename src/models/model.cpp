#include "models/model.h"

#include "core/error.h"
#include "models/transformer.h"

namespace peft {

std::vector<std::pair<std::string, Projection>> Model::projections() {
  std::vector<std::pair<std::string, Projection>> result;
  for (const auto& item : named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    if (auto projection = std::dynamic_pointer_cast<ProjectionImpl>(item.value())) {
      result.emplace_back(item.key(), Projection(projection));
    }
  }
  return result;
}

void Model::freeze() {
  for (auto& parameter : parameters()) parameter.set_requires_grad(false);
}

Transformer& require_transformer(Model& model, const std::string& method) {
  auto* transformer = dynamic_cast<Transformer*>(&model);
  check(transformer != nullptr, method +
                                    " needs to know the model's architecture (its blocks, attention or "
                                    "embeddings), and " +
                                    model.description() +
                                    " is of an architecture the tool does not know; lora, ia3, bitfit and full apply "
                                    "to any TorchScript module");
  return *transformer;
}

}  // namespace peft
