#include "peft/classifier_head.h"

#include "core/error.h"
#include "core/strings.h"
#include "models/sequence_classifier.h"

namespace peft {
namespace {

class ClassifierHead : public Method {
 public:
  ClassifierHead(std::unique_ptr<Method> method, std::vector<std::string> modules)
      : method_(std::move(method)), modules_(std::move(modules)) {}

  std::string name() const override { return method_->name(); }
  void prepare(const Tokenizer& tokenizer) override { method_->prepare(tokenizer); }
  void initialise_from_data(Model& model, const std::vector<Example>& examples, int64_t pad_id) override {
    method_->initialise_from_data(model, examples, pad_id);
  }

  void attach(Model& model) override {
    method_->attach(model);
    auto config = method_->adapter_config("");
    std::string type = config.value("peft_type", "");
    key_prefix_ = type == "PROMPT_TUNING" || type == "PREFIX_TUNING" ? "base_model." : "base_model.model.";
    // A listed module the model lacks is skipped, as PEFT does (it lists "score" for every SEQ_CLS model).
    std::vector<std::string> present;
    for (const auto& module : modules_) {
      size_t before = head_.size();
      for (auto& item : model.named_parameters()) {
        if (item.key() != module && !starts_with(item.key(), module + ".")) continue;
        item.value().set_requires_grad(true);
        head_.push_back({item.key(), item.value(), item.value().dim() >= 2});  // no decay on biases
      }
      if (head_.size() > before) present.push_back(module);
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
    out.insert(out.end(), head_.begin(), head_.end());
    return out;
  }

  std::map<std::string, torch::Tensor> adapter_tensors() const override {
    auto out = method_->adapter_tensors();
    for (const auto& parameter : head_) {
      out[key_prefix_ + parameter.name] = parameter.tensor.detach().to(torch::kCPU, torch::kFloat).contiguous();
    }
    return out;
  }

  void load_adapter_tensors(const std::map<std::string, torch::Tensor>& tensors) override {
    auto rest = tensors;
    torch::NoGradGuard no_grad;
    for (const auto& parameter : head_) {
      std::string key = key_prefix_ + parameter.name;
      auto it = rest.find(key);
      check(it != rest.end(), "adapter lacks tensor '" + key + "' of modules_to_save");
      check(it->second.sizes() == parameter.tensor.sizes(),
            "adapter tensor '" + key + "' has shape " + c10::str(it->second.sizes()) + ", the model expects " +
                c10::str(parameter.tensor.sizes()) + " (trained for another number of labels?)");
      parameter.tensor.copy_(it->second);
      rest.erase(it);
    }
    method_->load_adapter_tensors(rest);
  }

  nlohmann::json adapter_config(const std::string& base_model_path) const override {
    auto config = method_->adapter_config(base_model_path);
    config["task_type"] = "SEQ_CLS";
    config["modules_to_save"] = modules_;
    return config;
  }

  void merge(Model& model) override {
    method_->merge(model);
    for (auto& parameter : head_) parameter.tensor.set_requires_grad(false);  // now part of the model
  }
  bool mergeable() const override { return method_->mergeable(); }
  bool writes_model() const override { return method_->writes_model(); }
  // The head's tensors are the model's own layers, which the FLOP count already holds.
  int64_t per_token_weights() const override { return method_->per_token_weights(); }
  bool backpropagates_through_base() const override { return method_->backpropagates_through_base(); }

 private:
  std::unique_ptr<Method> method_;
  std::vector<std::string> modules_;
  std::vector<TrainableParameter> head_;
  std::string key_prefix_ = "base_model.model.";
};

}  // namespace

std::unique_ptr<Method> with_classifier_head(std::unique_ptr<Method> method, const SequenceClassifier& model) {
  if (method->writes_model()) return method;  // full fine-tuning trains and writes the head with everything
  std::vector<std::string> modules = {model.head_module()};
  modules.insert(modules.end(), model.created_modules.begin(), model.created_modules.end());
  return with_saved_modules(std::move(method), std::move(modules));
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

std::unique_ptr<Method> with_saved_modules(std::unique_ptr<Method> method, std::vector<std::string> modules) {
  return std::make_unique<ClassifierHead>(std::move(method), std::move(modules));
}

}  // namespace peft
