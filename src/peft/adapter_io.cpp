#include "peft/adapter_io.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "peft/registry.h"

namespace peft {

void save_adapter(const std::string& directory, const Method& method, const std::string& base_model_path) {
  ensure_directory(directory);
  safetensors::save(directory + "/adapter_model.safetensors", method.adapter_tensors());
  write_file_atomic(directory + "/adapter_config.json", method.adapter_config(base_model_path).dump(2) + "\n");
}

std::unique_ptr<Method> load_adapter(const std::string& directory, CausalLM& model) {
  namespace fs = std::filesystem;
  check(fs::is_directory(directory), "adapter directory not found: " + directory);
  std::string config_path = directory + "/adapter_config.json";
  check(fs::exists(config_path), "no adapter_config.json in adapter directory " + directory);
  nlohmann::json config;
  try {
    std::ifstream in(config_path);
    config = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(config_path + ": invalid JSON: " + e.what());
  }
  check(config.is_object() && config.contains("peft_type") && config["peft_type"].is_string(),
        config_path + ": missing 'peft_type'");
  const auto& entry = find_method_by_peft_type(config["peft_type"].get<std::string>());
  std::shared_ptr<MethodOptions> options;
  try {
    options = entry.options_from_adapter_config(config);
  } catch (const Error& e) {
    throw Error(config_path + ": " + e.what());
  }
  auto method = entry.make_method(options);
  method->attach(model);

  std::string weights_path = directory + "/adapter_model.safetensors";
  check(fs::exists(weights_path), "no adapter_model.safetensors in adapter directory " + directory);
  auto file = safetensors::File::open(weights_path);
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& name : file->names()) tensors[name] = file->tensor(name);
  try {
    method->load_adapter_tensors(tensors);
  } catch (const Error& e) {
    throw Error(weights_path + ": " + e.what());
  }
  return method;
}

}  // namespace peft
