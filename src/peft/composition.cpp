#include "peft/composition.h"

#include <set>

#include "core/error.h"
#include "core/strings.h"

namespace peft {
namespace {

class Composition : public Method {
 public:
  // `list_name` is how messages name the list: "peft" for a run config, "methods" for a saved adapter.
  Composition(std::vector<std::unique_ptr<Method>> methods, std::string list_name)
      : methods_(std::move(methods)), list_name_(std::move(list_name)) {}

  std::string name() const override {
    std::vector<std::string> names;
    for (const auto& method : methods_) names.push_back(method->name());
    return join(names, "+");
  }

  void prepare(const Tokenizer& tokenizer) override {
    for (size_t i = 0; i < methods_.size(); ++i) {
      try {
        methods_[i]->prepare(tokenizer);
      } catch (const Error& e) {
        throw Error(label(i) + ": " + e.what());
      }
    }
  }

  void initialise_from_data(Model& model, const std::vector<Example>& examples, int64_t pad_id) override {
    for (auto& method : methods_) method->initialise_from_data(model, examples, pad_id);
  }

  // Refuses, before any training, members that train the same parameter or whose adapter tensors would share a
  // key (prompt and prefix tuning both write `prompt_embeddings`), so that every composition can be saved.
  void attach(Model& model) override {
    std::map<std::string, size_t> owner;      // trained parameter -> index of the method that trains it
    std::map<std::string, size_t> key_owner;  // adapter tensor key -> index of the method that writes it
    for (size_t i = 0; i < methods_.size(); ++i) {
      try {
        methods_[i]->attach(model);
      } catch (const Error& e) {
        throw Error(label(i) + ": " + e.what());
      }
      for (const auto& parameter : methods_[i]->trainable_parameters()) {
        auto [it, inserted] = owner.emplace(parameter.name, i);
        check(inserted, label(it->second) + " and " + label(i) + " both train " + parameter.name +
                            " (give the methods disjoint targets)");
      }
      std::vector<std::string> keys;
      for (const auto& [key, unused] : methods_[i]->adapter_tensors()) {
        auto [it, inserted] = key_owner.emplace(key, i);
        check(inserted, label(it->second) + " and " + label(i) + " both write adapter tensor '" + key +
                            "', so they cannot be saved as one adapter");
        keys.push_back(key);
      }
      keys_.push_back(std::move(keys));
    }
  }

  std::vector<std::string> targets() const override {
    std::vector<std::string> out;
    for (const auto& method : methods_) {
      for (const auto& target : method->targets()) out.push_back(method->name() + ": " + target);
    }
    return out;
  }

  std::vector<TrainableParameter> trainable_parameters() const override {
    std::vector<TrainableParameter> out;
    for (const auto& method : methods_) {
      auto parameters = method->trainable_parameters();
      out.insert(out.end(), parameters.begin(), parameters.end());
    }
    return out;
  }

  std::map<std::string, torch::Tensor> adapter_tensors() const override {
    std::map<std::string, torch::Tensor> out;  // keys are disjoint: attach() checked
    for (const auto& method : methods_) out.merge(method->adapter_tensors());
    return out;
  }

  // Each method takes exactly the keys it writes; a key no method writes means the file is not this composition.
  void load_adapter_tensors(const std::map<std::string, torch::Tensor>& tensors) override {
    std::set<std::string> used;
    for (size_t i = 0; i < methods_.size(); ++i) {
      std::map<std::string, torch::Tensor> own;
      for (const auto& key : keys_[i]) {
        auto it = tensors.find(key);
        if (it != tensors.end()) own.insert(*it);
        used.insert(key);
      }
      try {
        methods_[i]->load_adapter_tensors(own);
      } catch (const Error& e) {
        throw Error(label(i) + ": " + e.what());
      }
    }
    for (const auto& [key, unused] : tensors) {
      check(used.count(key) > 0,
            "adapter tensor '" + key + "' belongs to none of the composition's methods (" + name() + ")");
    }
  }

  nlohmann::json adapter_config(const std::string& base_model_path) const override {
    nlohmann::json methods = nlohmann::json::array();
    for (const auto& method : methods_) methods.push_back(method->adapter_config(base_model_path));
    auto config = common_adapter_config(base_model_path, kCompositionPeftType);
    config["methods"] = methods;
    return config;
  }

  // All or nothing: a composition with one unmergeable method is refused before any weight changes.
  void merge(Model& model) override {
    for (size_t i = 0; i < methods_.size(); ++i) {
      if (!methods_[i]->mergeable()) {
        try {
          methods_[i]->merge(model);  // throws the method's own reason
        } catch (const Error& e) {
          throw Error(label(i) + ": " + e.what());
        }
        throw Error(label(i) + " cannot be merged");
      }
    }
    for (auto& method : methods_) method->merge(model);
  }

  bool mergeable() const override {
    for (const auto& method : methods_) {
      if (!method->mergeable()) return false;
    }
    return true;
  }

  int64_t per_token_weights() const override {
    int64_t weights = 0;
    for (const auto& method : methods_) weights += method->per_token_weights();
    return weights;
  }
  bool backpropagates_through_base() const override {
    for (const auto& method : methods_) {
      if (method->backpropagates_through_base()) return true;
    }
    return false;
  }

 private:
  std::string label(size_t i) const { return list_name_ + "[" + std::to_string(i) + "] (" + methods_[i]->name() + ")"; }

  std::vector<std::unique_ptr<Method>> methods_;
  std::string list_name_;
  std::vector<std::vector<std::string>> keys_;  // adapter tensor keys of each method, from attach()
};

// Options parsers prefix their messages with the file name; the caller adds the full path instead.
std::string without_file_prefix(const std::string& message) {
  const std::string prefix = "adapter_config.json: ";
  return starts_with(message, prefix) ? message.substr(prefix.size()) : message;
}

std::unique_ptr<Method> single_method_from_config(const nlohmann::json& config, const std::string& where,
                                                  bool in_composition) {
  check(config.is_object() && config.contains("peft_type") && config["peft_type"].is_string(),
        where + "missing 'peft_type'");
  std::string peft_type = config["peft_type"].get<std::string>();
  check(peft_type != kCompositionPeftType, where + "a composition cannot contain another composition");
  try {
    const auto& entry = find_method_by_peft_type(peft_type);
    check(!in_composition || entry.standalone_reason.empty(), "'" + entry.name + "' " + entry.standalone_reason);
    return entry.make_method(entry.options_from_adapter_config(config));
  } catch (const Error& e) {
    throw Error(where + without_file_prefix(e.what()));
  }
}

}  // namespace

std::unique_ptr<Method> make_methods(const std::vector<MethodChoice>& choices) {
  check(!choices.empty(), "no PEFT method configured");
  std::vector<std::unique_ptr<Method>> methods;
  for (const auto& choice : choices) methods.push_back(find_method(choice.name).make_method(choice.options));
  if (methods.size() == 1) return std::move(methods.front());
  return std::make_unique<Composition>(std::move(methods), "peft");
}

std::unique_ptr<Method> method_from_adapter_config(const nlohmann::json& config) {
  check(config.is_object() && config.contains("peft_type") && config["peft_type"].is_string(), "missing 'peft_type'");
  if (config["peft_type"] != kCompositionPeftType) return single_method_from_config(config, "", false);
  check(config.contains("methods") && config["methods"].is_array() && !config["methods"].empty(),
        "a COMPOSITION needs a non-empty 'methods' list");
  std::vector<std::unique_ptr<Method>> methods;
  for (size_t i = 0; i < config["methods"].size(); ++i) {
    methods.push_back(single_method_from_config(config["methods"][i], "methods[" + std::to_string(i) + "]: ", true));
  }
  return std::make_unique<Composition>(std::move(methods), "methods");
}

}  // namespace peft
