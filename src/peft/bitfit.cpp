#include "peft/bitfit.h"

#include "core/error.h"
#include "core/strings.h"
#include "models/causal_lm.h"
#include "models/layers.h"
#include "peft/adapter_io.h"
#include "peft/target_matcher.h"

namespace peft {
namespace {

struct BiasSite {
  std::string path;  // module path, e.g. model.layers.0.self_attn.q_proj or transformer.h.0.ln_1
  torch::Tensor bias;
  bool added;  // zero bias added by attach(), not the base model's own
};

const StringOrList kAllLinear{false, "all-linear", {}};

std::vector<std::string> string_list(const nlohmann::json& value, const std::string& key) {
  check(value.is_array(), "adapter_config.json: '" + key + "' must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : value) {
    check(item.is_string(), "adapter_config.json: '" + key + "' must hold strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

class BitFit : public Method {
 public:
  explicit BitFit(std::shared_ptr<const BitFitOptions> options) : options_(std::move(options)) {}

  std::string name() const override { return "bitfit"; }

  void attach(Model& model) override {
    const auto& o = *options_;
    // `all` is every projection but the output head: exactly what all-linear selects.
    auto match = match_targets(
        model,
        o.biases == "all" ? kAllLinear : or_family_default(o.target_modules, model, DefaultTargets::bitfit_subset),
        {true, "", {}}, "peft.target_modules");
    saved_targets_ = match.saved;
    std::vector<std::pair<std::string, Projection>> chosen;
    std::vector<std::string> to_add;
    for (auto& [path, projection] : model.projections()) {
      if (std::find(match.paths.begin(), match.paths.end(), path) == match.paths.end()) continue;
      if (!projection->bias.defined() && !model.can_add_biases()) continue;  // only the module's own biases
      chosen.emplace_back(path, projection);
      if (!projection->bias.defined()) to_add.push_back(path);
    }
    check(!chosen.empty(), "bitfit: no bias to train (biases: " + o.biases + ")" +
                               (model.can_add_biases() ? "" : "; " + model.description() + " has none at the targets"));
    // Checked before touching the model, so that a refused adapter leaves it as it was.
    if (o.expected_added_biases && *o.expected_added_biases != to_add) {
      throw Error("adapter_config.json: added_biases lists " + std::to_string(o.expected_added_biases->size()) +
                  " module(s) but this model lacks a bias at " + std::to_string(to_add.size()) +
                  " of the targets (was it trained for another base model?)");
    }
    torch::NoGradGuard no_grad;
    for (auto& [path, projection] : chosen) {
      bool added = !projection->bias.defined();
      if (added) {
        projection->bias = projection->register_parameter(
            "bias", torch::zeros({projection->out_features}, projection->weight.options()), /*requires_grad=*/true);
      } else {
        projection->bias.set_requires_grad(true);
      }
      sites_.push_back({path, projection->bias, added});
    }
    if (o.biases != "all") return;
    // The paper's "all bias terms" include the LayerNorm shifts (GPT-2, BERT); RMSNorm has none.
    for (const auto& item : model.named_modules("", /*include_self=*/false)) {
      auto norm = std::dynamic_pointer_cast<LayerNormImpl>(item.value());
      if (!norm || !norm->bias.defined()) continue;
      norm->bias.set_requires_grad(true);
      sites_.push_back({item.key(), norm->bias, false});
    }
  }

  std::vector<std::string> targets() const override {
    std::vector<std::string> out;
    for (const auto& site : sites_) out.push_back(site.path);
    return out;
  }

  std::vector<TrainableParameter> trainable_parameters() const override {
    std::vector<TrainableParameter> out;
    for (const auto& site : sites_) out.push_back({site.path + ".bias", site.bias, false});  // no decay on biases
    return out;
  }

  nlohmann::json adapter_config(const std::string& base_model_path) const override {
    const auto& o = *options_;
    nlohmann::json target = o.biases == "all" || o.target_modules.is_list ? nlohmann::json(saved_targets_)
                                                                          : nlohmann::json(o.target_modules.string);
    std::vector<std::string> added;
    for (const auto& site : sites_) {
      if (site.added) added.push_back(site.path);
    }
    auto config = common_adapter_config(base_model_path, "BITFIT");
    config.update({{"added_biases", added}, {"biases", o.biases}, {"target_modules", target}});
    return config;
  }

  void merge(Model& model) override {
    // The trained biases already are the model's biases: only stop training them.
    for (auto& site : sites_) site.bias.set_requires_grad(false);
  }

 protected:
  std::string tensor_settings() const override { return "biases or target_modules"; }

 private:
  std::shared_ptr<const BitFitOptions> options_;
  std::vector<BiasSite> sites_;
  std::vector<std::string> saved_targets_;
};

}  // namespace

void BitFitOptions::read(Section& section) {
  section.get_choice("biases", biases, {"all", "subset"});
  if (biases == "subset") {
    // Left out, the family's default applies (resolved at attach()), so the resolved config leaves it out too.
    if (section.has("target_modules")) section.get("target_modules", target_modules);
    if (section.has("target_modules") &&
        (target_modules.is_list ? target_modules.list.empty() : target_modules.string.empty())) {
      section.fail("target_modules", "must name at least one module (a list or a regex string)");
    }
  } else if (section.has("target_modules")) {
    section.fail("target_modules", "is only used with biases: subset (biases: all trains every projection's bias)");
  }
}

std::shared_ptr<MethodOptions> BitFitOptions::from_adapter_config(const nlohmann::json& config) {
  auto options = std::make_shared<BitFitOptions>();
  try {
    options->biases = config.value("biases", std::string("all"));
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("adapter_config.json: ") + e.what());
  }
  check(options->biases == "all" || options->biases == "subset",
        "adapter_config.json: 'biases' must be all or subset, got '" + printable(options->biases) + "'");
  if (options->biases == "subset") {
    check(config.contains("target_modules"), "adapter_config.json: 'target_modules' is required for biases subset");
    const auto& target = config["target_modules"];
    if (target.is_string()) {
      options->target_modules = {false, target.get<std::string>(), {}};
    } else {
      options->target_modules = {true, "", string_list(target, "target_modules")};
    }
  }
  if (config.contains("added_biases"))
    options->expected_added_biases = string_list(config["added_biases"], "added_biases");
  return options;
}

std::unique_ptr<Method> make_bitfit(std::shared_ptr<const MethodOptions> options) {
  auto bitfit = std::dynamic_pointer_cast<const BitFitOptions>(options);
  check(bitfit != nullptr, "internal: BitFit built from options of another method");
  return std::make_unique<BitFit>(std::move(bitfit));
}

}  // namespace peft
