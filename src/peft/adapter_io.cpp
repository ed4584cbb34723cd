#include "peft/adapter_io.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/json_depth.h"
#include "core/strings.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "models/sequence_classifier.h"
#include "peft/composition.h"
#include "peft/modules_to_save.h"

namespace peft {

void save_adapter(const std::string& directory, const Method& method, const std::string& base_model_path) {
  ensure_directory(directory);
  safetensors::save(directory + "/adapter_model.safetensors", method.adapter_tensors());
  write_file_atomic(directory + "/adapter_config.json", method.adapter_config(base_model_path).dump(2) + "\n");
}

std::unique_ptr<Method> load_adapter(const std::string& directory, Model& model) {
  namespace fs = std::filesystem;
  check(fs::is_directory(directory), "adapter directory not found: " + directory);
  std::string config_path = directory + "/adapter_config.json";
  check(fs::exists(config_path) || !fs::exists(directory + "/config.json"),
        directory + " holds a model, not an adapter (full fine-tuning output?): pass it as the model instead");
  nlohmann::json config = read_adapter_config(directory);
  auto* classifier = dynamic_cast<SequenceClassifier*>(&model);
  bool sequence_classification = config.value("task_type", "") == "SEQ_CLS";
  check(sequence_classification == (classifier != nullptr),
        config_path + ": task_type " + config.value("task_type", std::string("(none)")) + " does not fit " +
            model.config().architecture + (classifier ? ", a sequence classifier (SEQ_CLS)" : ", a causal LM"));
  std::unique_ptr<Method> method;
  try {
    // The modules are the wrapper's to load (peft/modules_to_save.h); a classifier's list names PEFT's usual
    // heads ("classifier", "score"), of which the model has one.
    auto modules = take_modules_to_save(config);
    method = method_from_adapter_config(config);
    if (classifier || !modules.empty()) {
      method = with_modules_to_save(std::move(method), modules, classifier ? modules : std::vector<std::string>{});
    }
  } catch (const Error& e) {
    throw Error(config_path + ": " + e.what());
  }
  try {
    method->attach(model);
  } catch (const c10::Error& e) {  // sizes from the config that cannot be allocated (r: 1e12, say)
    std::string reason = e.what_without_backtrace();
    throw Error(config_path + ": the adapter it describes cannot be built on " + model.description() + ": " +
                printable(reason.substr(0, reason.find('\n'))));
  }

  std::string weights_path = directory + "/adapter_model.safetensors";
  // Pickle can run arbitrary code when loaded: a .bin adapter is never read, only pointed at a conversion.
  check(fs::exists(weights_path) || !fs::exists(directory + "/adapter_model.bin"),
        directory +
            " holds adapter_model.bin (pickled PyTorch weights, which can execute code when loaded) and no "
            "adapter_model.safetensors; convert it in Python: from safetensors.torch import save_file; "
            "save_file(torch.load('adapter_model.bin', weights_only=True), 'adapter_model.safetensors')");
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

nlohmann::json read_adapter_config(const std::string& directory) {
  std::string path = directory + "/adapter_config.json";
  std::error_code error;
  check(std::filesystem::exists(path, error), "no adapter_config.json in adapter directory " + directory);
  check(std::filesystem::is_regular_file(path, error), path + " is not a regular file");
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  check(!in.bad(), "cannot read " + path);
  return parse_json(text, path);
}

int64_t positive_integer(const nlohmann::json& config, const std::string& key) {
  check(config.contains(key) && config[key].is_number_integer() && config[key].get<int64_t>() >= 1,
        "adapter_config.json: '" + key + "' must be a positive integer");
  return config[key].get<int64_t>();
}

void check_decoder_only(const nlohmann::json& config) {
  nlohmann::json submodules =
      config.contains("num_transformer_submodules") ? config["num_transformer_submodules"] : nlohmann::json(1);
  check(submodules == 1, "adapter_config.json: num_transformer_submodules " + submodules.dump() +
                             " is for encoder-decoder models; only decoder-only (1) is supported");
}

StringOrList targets_from_json(const nlohmann::json& value, const std::string& key) {
  StringOrList out{true, "", {}};
  if (value.is_null()) return out;
  if (value.is_string()) return {false, value.get<std::string>(), {}};
  check(value.is_array(), "adapter_config.json: '" + key + "' must be a string or a list of strings");
  for (const auto& item : value) {
    check(item.is_string(), "adapter_config.json: '" + key + "' must hold strings");
    out.list.push_back(item.get<std::string>());
  }
  return out;
}

nlohmann::json targets_to_json(const StringOrList& targets, const std::vector<std::string>& resolved) {
  if (targets.is_list || targets.string == "all-linear") return resolved;
  return targets.string;
}

}  // namespace peft
