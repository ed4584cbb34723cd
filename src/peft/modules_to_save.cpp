#include "peft/modules_to_save.h"

#include <set>

#include "core/error.h"
#include "core/strings.h"
#include "models/causal_lm.h"
#include "models/sequence_classifier.h"

namespace peft {
namespace {

// PEFT's rule: a module is selected when its path ends with the name (plain string suffix).
bool selects(const std::string& name, const std::string& parameter_path) {
  for (size_t dot = parameter_path.find('.'); dot != std::string::npos; dot = parameter_path.find('.', dot + 1)) {
    if (ends_with(parameter_path.substr(0, dot), name)) return true;
  }
  return false;
}

// The last component of every module path that holds parameters, for the message when a name selects nothing.
std::string module_names(Model& model) {
  std::set<std::string> names;
  for (const auto& item : model.named_parameters()) {
    std::string module = item.key().substr(0, item.key().rfind('.'));
    names.insert(module.substr(module.rfind('.') + 1));
  }
  return join(std::vector<std::string>(names.begin(), names.end()), ", ");
}

class ModulesToSave : public Method {
 public:
  ModulesToSave(std::unique_ptr<Method> method, std::vector<std::string> modules, std::vector<std::string> optional)
      : method_(std::move(method)), modules_(std::move(modules)), optional_(optional.begin(), optional.end()) {}

  std::string name() const override { return method_->name(); }
  void prepare(const Tokenizer& tokenizer) override { method_->prepare(tokenizer); }
  void initialise_from_data(Model& model, const std::vector<Example>& examples, int64_t pad_id) override {
    method_->initialise_from_data(model, examples, pad_id);
  }

  void attach(Model& model) override {
    untie_a_named_head(model);  // before the method hooks the head
    method_->attach(model);
    classifier_ = dynamic_cast<SequenceClassifier*>(&model) != nullptr;
    std::string type = method_->adapter_config("").value("peft_type", "");
    key_prefix_ = type == "PROMPT_TUNING" || type == "PREFIX_TUNING" ? "base_model." : "base_model.model.";
    // Parameters the method trains itself (LoRA's factors on a projection inside a listed module) stay its own.
    std::set<const void*> taken;
    for (const auto& parameter : method_->trainable_parameters()) taken.insert(parameter.tensor.unsafeGetTensorImpl());
    std::vector<std::string> present;
    for (const auto& module : modules_) {
      for (auto& [path, projection] : model.projections()) {
        check(!projection->quantized() || !selects(module, path + ".weight"),
              "modules_to_save: '" + printable(module) + "' holds " + path +
                  ", which model.quantize stores quantized and frozen (the output and classifier heads stay dense)");
      }
      size_t before = saved_.size();
      for (auto& item : model.named_parameters()) {
        if (!selects(module, item.key()) || !taken.insert(item.value().unsafeGetTensorImpl()).second) continue;
        item.value().set_requires_grad(true);
        saved_.push_back({item.key(), item.value(), item.value().dim() >= 2});  // no decay on biases and norms
      }
      if (saved_.size() > before) {
        present.push_back(module);
      } else {
        check(optional_.count(module) > 0,
              "modules_to_save: '" + printable(module) + "' names no module of " + model.description() +
                  " that the method leaves to it; its modules are named " + module_names(model));
      }
    }
    modules_ = present;
  }

  std::vector<std::string> targets() const override {
    auto out = method_->targets();
    out.insert(out.end(), modules_.begin(), modules_.end());
    return out;
  }

  std::vector<TrainableParameter> trainable_parameters() const override {
    auto out = method_->trainable_parameters();
    out.insert(out.end(), saved_.begin(), saved_.end());
    return out;
  }

  std::map<std::string, torch::Tensor> adapter_tensors() const override {
    auto out = method_->adapter_tensors();
    for (const auto& parameter : saved_) {
      out[key_prefix_ + parameter.name] = parameter.tensor.detach().to(torch::kCPU, torch::kFloat).contiguous();
    }
    return out;
  }

  void load_adapter_tensors(const std::map<std::string, torch::Tensor>& tensors) override {
    auto rest = tensors;
    torch::NoGradGuard no_grad;
    for (const auto& parameter : saved_) {
      std::string key = key_prefix_ + parameter.name;
      auto it = rest.find(key);
      check(it != rest.end(), "adapter lacks tensor '" + key + "' of modules_to_save");
      check(it->second.sizes() == parameter.tensor.sizes(),
            "adapter tensor '" + key + "' has shape " + c10::str(it->second.sizes()) + ", the model expects " +
                c10::str(parameter.tensor.sizes()) +
                (classifier_ ? " (trained for another number of labels?)" : " (trained for another base model?)"));
      parameter.tensor.copy_(it->second);
      rest.erase(it);
    }
    method_->load_adapter_tensors(rest);
  }

  nlohmann::json adapter_config(const std::string& base_model_path) const override {
    auto config = method_->adapter_config(base_model_path);
    if (classifier_) config["task_type"] = "SEQ_CLS";
    config["modules_to_save"] = modules_;
    return config;
  }

  void merge(Model& model) override {
    method_->merge(model);
    for (auto& parameter : saved_) parameter.tensor.set_requires_grad(false);  // now part of the model
  }
  bool mergeable() const override { return method_->mergeable(); }
  bool writes_model() const override { return method_->writes_model(); }
  // The modules are the model's own layers, which the FLOP count already holds.
  int64_t per_token_weights() const override { return method_->per_token_weights(); }
  bool backpropagates_through_base() const override { return method_->backpropagates_through_base(); }

 private:
  // A tied head is the embedding matrix: training either as a module to save must leave the other as it was.
  void untie_a_named_head(Model& model) {
    auto* lm = dynamic_cast<CausalLM*>(&model);
    if (!lm || !model.config().tie_word_embeddings) return;
    std::string embedding;
    const void* shared = lm->head()->weight.unsafeGetTensorImpl();
    for (const auto& item : model.named_parameters()) {
      if (item.value().unsafeGetTensorImpl() == shared) embedding = item.key();
    }
    for (const auto& module : modules_) {
      if (ends_with("lm_head", module) || (!embedding.empty() && selects(module, embedding))) {
        lm->untie_head();
        return;
      }
    }
  }

  std::unique_ptr<Method> method_;
  std::vector<std::string> modules_;
  std::set<std::string> optional_;
  bool classifier_ = false;
  std::vector<TrainableParameter> saved_;
  std::string key_prefix_ = "base_model.model.";
};

}  // namespace

std::unique_ptr<Method> with_modules_to_save(std::unique_ptr<Method> method, std::vector<std::string> modules,
                                             std::vector<std::string> optional) {
  return std::make_unique<ModulesToSave>(std::move(method), std::move(modules), std::move(optional));
}

std::unique_ptr<Method> with_classifier_head(std::unique_ptr<Method> method, const SequenceClassifier& model,
                                             std::vector<std::string> modules) {
  if (method->writes_model()) return method;
  std::vector<std::string> own = {model.head_module()};
  own.insert(own.end(), model.created_modules.begin(), model.created_modules.end());
  modules.insert(modules.begin(), own.begin(), own.end());
  return with_modules_to_save(std::move(method), std::move(modules), own);
}

std::vector<std::string> take_modules_to_save(nlohmann::json& config) {
  std::vector<std::string> modules;
  auto it = config.find("modules_to_save");
  if (it == config.end() || it->is_null()) return modules;
  check(it->is_array(), "adapter_config.json: 'modules_to_save' must be a list of module names");
  for (const auto& item : *it) {
    check(item.is_string(), "adapter_config.json: 'modules_to_save' must hold strings");
    modules.push_back(item.get<std::string>());
  }
  config.erase(it);
  return modules;
}

}  // namespace peft
