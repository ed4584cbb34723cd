#include "peft/full.h"

#include <set>

#include "core/error.h"
#include "models/causal_lm.h"

namespace peft {
namespace {

class FullFineTuning : public Method {
 public:
  std::string name() const override { return "full"; }

  void attach(Model& model) override {
    for (auto& [path, projection] : model.projections()) {
      check(!projection->quantized(), "full fine-tuning trains every weight, and " + path +
                                          " is stored quantized (model.quantize keeps it frozen)");
    }
    std::set<const void*> seen;  // a tied head shares the embedding matrix: train it once
    for (const auto& item : model.named_parameters()) {
      torch::Tensor tensor = item.value();
      if (!seen.insert(tensor.unsafeGetTensorImpl()).second) continue;
      tensor.set_requires_grad(true);
      parameters_.push_back({item.key(), tensor, tensor.dim() >= 2});
    }
    check(!parameters_.empty(), "full fine-tuning: the model has no parameters");
  }

  std::vector<std::string> targets() const override {
    std::vector<std::string> out;
    for (const auto& parameter : parameters_) out.push_back(parameter.name);
    return out;
  }

  std::vector<TrainableParameter> trainable_parameters() const override { return parameters_; }

  // The trained weights are the model's own: the trainer writes the whole model directory instead.
  std::map<std::string, torch::Tensor> adapter_tensors() const override {
    throw Error("full fine-tuning writes a model directory, not an adapter");
  }
  void load_adapter_tensors(const std::map<std::string, torch::Tensor>&) override {
    throw Error("full fine-tuning has no adapter to load: evaluate its output directory with --model");
  }
  nlohmann::json adapter_config(const std::string&) const override {
    throw Error("full fine-tuning writes a model directory, not an adapter");
  }

  void merge(Model&) override {
    for (auto& parameter : parameters_) parameter.tensor.set_requires_grad(false);
  }

  bool writes_model() const override { return true; }
  int64_t per_token_weights() const override { return 0; }  // it trains the model's own weights

 private:
  std::vector<TrainableParameter> parameters_;
};

}  // namespace

std::unique_ptr<Method> make_full(std::shared_ptr<const MethodOptions>) { return std::make_unique<FullFineTuning>(); }

}  // namespace peft
