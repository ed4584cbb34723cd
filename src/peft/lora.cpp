#include "peft/lora.h"

#include <cmath>

#include "core/error.h"
#include "models/causal_lm.h"
#include "peft/adapter_io.h"
#include "peft/registration.h"
#include "peft/target_matcher.h"

namespace peft {
namespace {

// A module holding one `weight`, so that the projection's parameters are named lora_A.weight / lora_B.weight
// exactly as PEFT names them.
class WeightHolderImpl : public torch::nn::Module {
 public:
  explicit WeightHolderImpl(torch::Tensor value) { weight = register_parameter("weight", std::move(value)); }
  torch::Tensor weight;
};
TORCH_MODULE(WeightHolder);

class LoraHook : public ProjectionHook {
 public:
  LoraHook(WeightHolder a, WeightHolder b, double scale, double dropout)
      : a_(std::move(a)), b_(std::move(b)), scale_(scale), dropout_(dropout) {}

  torch::Tensor on_output(const torch::Tensor& x, const torch::Tensor& y) override {
    auto input = x.to(a_->weight.scalar_type());
    if (dropout_ > 0) input = torch::dropout(input, dropout_, a_->is_training());
    namespace F = torch::nn::functional;
    auto delta = F::linear(F::linear(input, a_->weight), b_->weight);  // (..., out)
    return y + delta.mul_(scale_).to(y.scalar_type());
  }

  void merge_into(torch::Tensor& weight, torch::Tensor& bias) override {
    auto delta = torch::matmul(b_->weight, a_->weight).mul_(scale_);  // (out, in)
    weight.add_(delta.to(weight.scalar_type()));
  }

 private:
  WeightHolder a_, b_;
  double scale_, dropout_;
};

struct LoraSite {
  std::string path;  // module path, e.g. model.layers.0.self_attn.q_proj
  WeightHolder a{nullptr}, b{nullptr};
  Projection projection{nullptr};
};

class Lora : public Method {
 public:
  explicit Lora(std::shared_ptr<const LoraOptions> options) : options_(std::move(options)) {}

  std::string name() const override { return "lora"; }

  void attach(Model& model) override {
    const auto& o = *options_;
    auto match = match_targets(model, or_family_default(o.target_modules, model, DefaultTargets::lora),
                               o.exclude_modules, "peft.target_modules");
    saved_targets_ = match.saved;
    torch::NoGradGuard no_grad;
    for (auto& [path, projection] : model.projections()) {
      bool targeted = std::find(match.paths.begin(), match.paths.end(), path) != match.paths.end();
      // bias=all trains every bias of the model; lora_only those of adapted layers.
      if (projection->bias.defined() && (o.bias == "all" || (o.bias == "lora_only" && targeted))) {
        projection->bias.set_requires_grad(true);
        biases_.push_back({path + ".bias", projection->bias, false});
      }
      if (!targeted) continue;
      check_name_free(*projection, path, "lora_A");
      // PEFT records fan_in_fan_out for Conv1D targets (GPT-2); the factors' shapes are the same either way.
      fan_in_fan_out_ |= model.stored_transposed(path + ".weight");
      auto options = torch::TensorOptions().dtype(torch::kFloat).device(projection->weight.device());
      auto a = torch::empty({o.r, projection->in_features}, options);
      auto b = torch::zeros({projection->out_features, o.r}, options);
      if (o.init_lora_weights == "gaussian") {
        a.normal_(0.0, 1.0 / static_cast<double>(o.r));
      } else {
        torch::nn::init::kaiming_uniform_(a, std::sqrt(5.0));
      }
      // PEFT's "false": both matrices random (nn.Linear's init), so the adapter is not a no-op at start.
      if (o.init_lora_weights == "false") torch::nn::init::kaiming_uniform_(b, std::sqrt(5.0));
      LoraSite site{path, WeightHolder(a.requires_grad_()), WeightHolder(b.requires_grad_()), projection};
      projection->register_module("lora_A", site.a);
      projection->register_module("lora_B", site.b);
      projection->add_hook(std::make_shared<LoraHook>(site.a, site.b, o.scale(), o.lora_dropout));
      sites_.push_back(site);
    }
  }

  std::vector<std::string> targets() const override {
    std::vector<std::string> out;
    for (const auto& site : sites_) out.push_back(site.path);
    return out;
  }

  std::vector<TrainableParameter> trainable_parameters() const override {
    std::vector<TrainableParameter> out;
    for (const auto& site : sites_) {
      out.push_back({site.path + ".lora_A.weight", site.a->weight, true});
      out.push_back({site.path + ".lora_B.weight", site.b->weight, true});
    }
    for (const auto& bias : biases_) out.push_back(bias);
    return out;
  }

  std::map<std::string, torch::Tensor> adapter_tensors() const override {
    return parameters_to_adapter_tensors(trainable_parameters());
  }

  void load_adapter_tensors(const std::map<std::string, torch::Tensor>& tensors) override {
    load_parameters_from_adapter_tensors(trainable_parameters(), tensors, "target_modules or bias");
  }

  nlohmann::json adapter_config(const std::string& base_model_path) const override {
    const auto& o = *options_;
    nlohmann::json target = targets_to_json(o.target_modules, saved_targets_);
    nlohmann::json exclude = nullptr;
    if (o.exclude_modules.is_list && !o.exclude_modules.list.empty()) exclude = o.exclude_modules.list;
    if (!o.exclude_modules.is_list) exclude = o.exclude_modules.string;
    return {
        {"alpha_pattern", nlohmann::json::object()},
        {"auto_mapping", nullptr},
        {"base_model_name_or_path", base_model_path},
        {"bias", o.bias},
        {"corda_config", nullptr},
        {"eva_config", nullptr},
        {"exclude_modules", exclude},
        {"fan_in_fan_out", fan_in_fan_out_},
        {"inference_mode", true},
        {"init_lora_weights", o.init_lora_weights == "gaussian" ? nlohmann::json("gaussian")
                                                                : nlohmann::json(o.init_lora_weights == "true")},
        {"layer_replication", nullptr},
        {"layers_pattern", nullptr},
        {"layers_to_transform", nullptr},
        {"loftq_config", nlohmann::json::object()},
        {"lora_alpha", o.lora_alpha},
        {"lora_bias", false},
        {"lora_dropout", o.lora_dropout},
        {"megatron_config", nullptr},
        {"megatron_core", "megatron.core"},
        {"modules_to_save", nullptr},
        {"peft_type", "LORA"},
        {"r", o.r},
        {"rank_pattern", nlohmann::json::object()},
        {"revision", nullptr},
        {"target_modules", target},
        {"task_type", "CAUSAL_LM"},
        {"trainable_token_indices", nullptr},
        {"use_dora", false},
        {"use_rslora", o.use_rslora},
    };
  }

  void merge(Model& model) override {
    for (auto& site : sites_) site.projection->merge_hooks();
  }

 private:
  std::shared_ptr<const LoraOptions> options_;
  std::vector<LoraSite> sites_;
  std::vector<TrainableParameter> biases_;
  std::vector<std::string> saved_targets_;
  bool fan_in_fan_out_ = false;
};

}  // namespace

void LoraOptions::read(Section& section) {
  section.get("r", r);
  section.get("lora_alpha", lora_alpha);
  section.get("lora_dropout", lora_dropout);
  // Left out, the family's default applies (resolved at attach()), so the resolved config leaves it out too.
  if (section.has("target_modules")) section.get("target_modules", target_modules);
  section.get("exclude_modules", exclude_modules);
  section.get("use_rslora", use_rslora);
  section.get_choice("bias", bias, {"none", "all", "lora_only"});
  section.get_choice("init_lora_weights", init_lora_weights, {"true", "false", "gaussian"});
  if (r <= 0) section.fail("r", "must be a positive integer, got " + std::to_string(r));
  if (lora_dropout < 0 || lora_dropout >= 1) section.fail("lora_dropout", "must be in [0, 1)");
  if (section.has("target_modules") &&
      (target_modules.is_list ? target_modules.list.empty() : target_modules.string.empty())) {
    section.fail("target_modules", "must name at least one module (a list, a regex string, or all-linear)");
  }
}

double LoraOptions::scale() const {
  return use_rslora ? lora_alpha / std::sqrt(static_cast<double>(r)) : lora_alpha / static_cast<double>(r);
}

std::shared_ptr<MethodOptions> LoraOptions::from_adapter_config(const nlohmann::json& config) {
  auto options = std::make_shared<LoraOptions>();
  options->r = positive_integer(config, "r");  // a float r would be cast, out of range undefined
  // Features PEFT has and this tool does not yet: refuse rather than compute something else.
  auto refuse_if = [&](const char* key, bool present) {
    check(!present, std::string("adapter_config.json: '") + key + "' is not supported by this tool yet");
  };
  try {
    options->lora_alpha = config.value("lora_alpha", static_cast<double>(options->r));
    options->lora_dropout = config.value("lora_dropout", 0.0);
    options->use_rslora = config.value("use_rslora", false);
    options->bias = config.value("bias", std::string("none"));
    refuse_if("use_dora", config.value("use_dora", false));
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("adapter_config.json: ") + e.what());
  }
  options->target_modules = targets_from_json(config.value("target_modules", nlohmann::json()), "target_modules");
  if (config.contains("exclude_modules")) {
    options->exclude_modules = targets_from_json(config["exclude_modules"], "exclude_modules");
  }
  // fan_in_fan_out needs nothing: like PEFT, it is taken from each target's layout (true for Conv1D).
  refuse_if("layers_to_transform", config.contains("layers_to_transform") && !config["layers_to_transform"].is_null());
  refuse_if("rank_pattern", config.contains("rank_pattern") && !config["rank_pattern"].empty());
  refuse_if("alpha_pattern", config.contains("alpha_pattern") && !config["alpha_pattern"].empty());
  refuse_if("modules_to_save", config.contains("modules_to_save") && !config["modules_to_save"].is_null());
  check(options->bias == "none" || options->bias == "all" || options->bias == "lora_only",
        "adapter_config.json: 'bias' must be none, all or lora_only");
  return options;
}

std::unique_ptr<Method> make_lora(std::shared_ptr<const MethodOptions> options) {
  auto lora = std::dynamic_pointer_cast<const LoraOptions>(options);
  check(lora != nullptr, "internal: LoRA built from options of another method");
  return std::make_unique<Lora>(std::move(lora));
}

}  // namespace peft
