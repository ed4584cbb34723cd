#include "peft/method.h"

#include "core/error.h"

namespace peft {

namespace {
const std::string kKeyPrefix = "base_model.model.";
}

std::map<std::string, torch::Tensor> Method::adapter_tensors() const {
  std::map<std::string, torch::Tensor> out;
  for (const auto& parameter : trainable_parameters()) {
    out[kKeyPrefix + parameter.name] = parameter.tensor.detach().to(torch::kCPU, torch::kFloat).contiguous();
  }
  return out;
}

void Method::load_adapter_tensors(const std::map<std::string, torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  auto parameters = trainable_parameters();
  for (const auto& parameter : parameters) {
    std::string key = kKeyPrefix + parameter.name;
    auto it = tensors.find(key);
    check(it != tensors.end(), "adapter lacks tensor '" + key + "' (was it trained for another base model?)");
    check(it->second.sizes() == parameter.tensor.sizes(),
          "adapter tensor '" + key + "' has shape " + c10::str(it->second.sizes()) + ", the model expects " +
              c10::str(parameter.tensor.sizes()) + " (was it trained for another base model?)");
    parameter.tensor.copy_(it->second);
  }
  check(tensors.size() == parameters.size(), "adapter has " + std::to_string(tensors.size()) +
                                                 " tensors but its config implies " +
                                                 std::to_string(parameters.size()) + " (" + tensor_settings() +
                                                 " in adapter_config.json disagrees with the file)");
}

nlohmann::json Method::common_adapter_config(const std::string& base_model_path, const std::string& peft_type) {
  return {{"auto_mapping", nullptr}, {"base_model_name_or_path", base_model_path},
          {"inference_mode", true},  {"modules_to_save", nullptr},
          {"peft_type", peft_type},  {"revision", nullptr},
          {"task_type", "CAUSAL_LM"}};
}

int64_t Method::per_token_weights() const {
  int64_t weights = 0;
  for (const auto& parameter : trainable_parameters()) {
    if (parameter.tensor.dim() == 2) weights += parameter.tensor.numel();
  }
  return weights;
}

}  // namespace peft
