#include "peft/ia3.h"

#include <set>
#include <tuple>

#include "core/error.h"
#include "core/strings.h"
#include "models/causal_lm.h"
#include "peft/adapter_io.h"
#include "peft/registration.h"
#include "peft/target_matcher.h"

namespace peft {
namespace {

// Checked against HF PEFT's src/peft/tuners/ia3/layer.py (Linear.forward / merge): the output-scaled case
// multiplies the base layer's whole output, bias included, so merging scales the bias as well; the input-scaled
// case leaves the bias alone. Both compute in l's dtype (float32) and cast back, as PEFT does.
class Ia3Hook : public ProjectionHook {
 public:
  Ia3Hook(torch::Tensor l, bool feedforward) : l_(std::move(l)), feedforward_(feedforward) {}

  torch::Tensor on_input(const torch::Tensor& x) override {
    if (!feedforward_) return x;
    return (x.to(l_.scalar_type()) * l_.view(-1)).to(x.scalar_type());
  }

  torch::Tensor on_output(const ProjectionImpl&, const torch::Tensor& x, const torch::Tensor& y) override {
    if (feedforward_) return y;
    return (y.to(l_.scalar_type()) * l_.view(-1)).to(y.scalar_type());
  }

  bool changes_input() const override { return feedforward_; }

  void merge_into(torch::Tensor& weight, torch::Tensor& bias) override {
    // l is [out, 1] (scales rows: diag(l)·W) or [1, in] (scales columns: W·diag(l)); broadcasting does both.
    weight.mul_(l_.to(weight.scalar_type()));
    if (!feedforward_ && bias.defined()) bias.mul_(l_.view(-1).to(bias.scalar_type()));
  }

 private:
  torch::Tensor l_;
  bool feedforward_;
};

struct Ia3Site {
  std::string path;  // module path, e.g. model.layers.0.self_attn.k_proj
  torch::Tensor l;   // [out, 1] or [1, in], float32
  bool feedforward;
  Projection projection{nullptr};
};

// Entries of `feedforward` that `targets` does not list (PEFT checks the subset only when both are lists).
std::vector<std::string> not_in_targets(const StringOrList& feedforward, const StringOrList& targets) {
  std::vector<std::string> missing;
  if (!feedforward.is_list || !targets.is_list) return missing;
  for (const auto& name : feedforward.list) {
    if (std::find(targets.list.begin(), targets.list.end(), name) == targets.list.end()) missing.push_back(name);
  }
  return missing;
}

// An empty string when `spec` is a list or a usable regular expression, else why it is not.
std::string regex_error(const StringOrList& spec) {
  return spec.is_list || spec.string.empty() ? "" : target_regex_problem(spec.string);
}

nlohmann::json spec_to_json(const StringOrList& spec) {
  if (!spec.is_list) return spec.string;
  std::set<std::string> unique(spec.list.begin(), spec.list.end());  // PEFT stores these as sets
  return std::vector<std::string>(unique.begin(), unique.end());
}

// The targets and feed-forward modules an (IA)³ run uses on `model`: the family's defaults where the options
// leave them out, the default feed-forward modules kept only where they are targets, so that the saved config
// passes PEFT's own subset check when reloaded there.
std::pair<StringOrList, StringOrList> resolve(const Ia3Options& o, const Model& model) {
  StringOrList targets = or_family_default(o.target_modules, model, DefaultTargets::ia3);
  if (o.feedforward_modules) return {targets, *o.feedforward_modules};
  StringOrList feedforward{true, "", {}};
  for (const auto& name : model.default_targets(DefaultTargets::ia3_feedforward)) {
    if (!targets.is_list || std::find(targets.list.begin(), targets.list.end(), name) != targets.list.end()) {
      feedforward.list.push_back(name);
    }
  }
  return {targets, feedforward};
}

class Ia3 : public Method {
 public:
  explicit Ia3(std::shared_ptr<const Ia3Options> options) : options_(std::move(options)) {}

  std::string name() const override { return "ia3"; }

  void attach(Model& model) override {
    const auto& o = *options_;
    std::tie(targets_, feedforward_) = resolve(o, model);
    auto match = match_targets(model, targets_, o.exclude_modules, "peft.target_modules");
    saved_targets_ = match.saved;
    std::string bad_regex = regex_error(feedforward_);
    check(bad_regex.empty(), "peft.feedforward_modules: " + bad_regex);
    auto outside = not_in_targets(feedforward_, targets_);
    check(outside.empty(), "peft.feedforward_modules must be a subset of target_modules " + describe(targets_) + "; [" +
                               join(outside, ", ") + "] not among them");
    torch::NoGradGuard no_grad;
    for (auto& [path, projection] : model.projections()) {
      if (std::find(match.paths.begin(), match.paths.end(), path) == match.paths.end()) continue;
      // PEFT matches feedforward_modules by plain suffix; a ".suffix" (target_matcher) is the same for whole
      // module names and does not let "proj" match "down_proj".
      check_name_free(*projection, path, "ia3_l");
      bool feedforward = matches(feedforward_, path);
      fan_in_fan_out_ |= model.stored_transposed(path + ".weight");  // recorded as PEFT does for Conv1D
      auto options = torch::TensorOptions().dtype(torch::kFloat).device(projection->weight.device());
      std::vector<int64_t> shape = feedforward ? std::vector<int64_t>{1, projection->in_features}
                                               : std::vector<int64_t>{projection->out_features, 1};
      auto l = o.init_ia3_weights ? torch::ones(shape, options) : torch::randn(shape, options);
      l = projection->register_parameter("ia3_l", l, /*requires_grad=*/true);
      projection->add_hook(std::make_shared<Ia3Hook>(l, feedforward));
      sites_.push_back({path, l, feedforward, projection});
    }
  }

  std::vector<std::string> targets() const override {
    std::vector<std::string> out;
    for (const auto& site : sites_) out.push_back(site.path);
    return out;
  }

  std::vector<TrainableParameter> trainable_parameters() const override {
    std::vector<TrainableParameter> out;
    // Scale vectors: decay would pull them towards 0, i.e. towards switching the activation off.
    for (const auto& site : sites_) out.push_back({site.path + ".ia3_l", site.l, false});
    return out;
  }

  nlohmann::json adapter_config(const std::string& base_model_path) const override {
    const auto& o = *options_;
    nlohmann::json target = targets_to_json(targets_, saved_targets_);
    nlohmann::json exclude = nullptr;
    if (o.exclude_modules.is_list && !o.exclude_modules.list.empty()) exclude = spec_to_json(o.exclude_modules);
    if (!o.exclude_modules.is_list) exclude = o.exclude_modules.string;
    auto config = common_adapter_config(base_model_path, "IA3");
    config.update({
        {"exclude_modules", exclude},
        {"fan_in_fan_out", fan_in_fan_out_},
        {"feedforward_modules", spec_to_json(feedforward_)},
        {"init_ia3_weights", o.init_ia3_weights},
        {"target_modules", target},
    });
    return config;
  }

  void merge(Model& model) override {
    for (auto& site : sites_) {
      site.projection->merge_hooks();
      site.l.set_requires_grad(false);  // folded into the weights: no longer trained
    }
  }

 protected:
  std::string tensor_settings() const override { return "target_modules or feedforward_modules"; }

 private:
  std::shared_ptr<const Ia3Options> options_;
  std::vector<Ia3Site> sites_;
  StringOrList targets_, feedforward_;  // as resolved for the model
  std::vector<std::string> saved_targets_;
  bool fan_in_fan_out_ = false;
};

}  // namespace

void Ia3Options::read(Section& section) {
  // Left out, the family's default applies (resolved at attach()), so the resolved config leaves it out too.
  if (section.has("target_modules")) section.get("target_modules", target_modules);
  section.get("exclude_modules", exclude_modules);
  section.get("init_ia3_weights", init_ia3_weights);
  if (section.has("target_modules") &&
      (target_modules.is_list ? target_modules.list.empty() : target_modules.string.empty())) {
    section.fail("target_modules", "must name at least one module (a list, a regex string, or all-linear)");
  }
  if (!section.has("feedforward_modules")) return;  // the family's default, resolved at attach()
  StringOrList feedforward{true, "", {}};
  section.get("feedforward_modules", feedforward);
  feedforward_modules = feedforward;
  std::string bad_regex = regex_error(feedforward);
  if (!bad_regex.empty()) section.fail("feedforward_modules", bad_regex);
  if (target_modules.is_list && target_modules.list.empty()) return;  // checked against the defaults at attach()
  auto outside = not_in_targets(feedforward, target_modules);
  if (!outside.empty()) {
    section.fail("feedforward_modules", "must be a subset of target_modules " + describe(target_modules) + "; [" +
                                            join(outside, ", ") + "] not among them");
  }
}

std::shared_ptr<MethodOptions> Ia3Options::from_adapter_config(const nlohmann::json& config) {
  auto options = std::make_shared<Ia3Options>();
  // Features PEFT has and this tool does not yet: refuse rather than compute something else.
  auto refuse_if = [&](const char* key, bool present) {
    check(!present, std::string("adapter_config.json: '") + key + "' is not supported by this tool yet");
  };
  try {
    // fan_in_fan_out needs nothing: like PEFT, it follows each target's layout (true for Conv1D).
    refuse_if("modules_to_save", config.contains("modules_to_save") && !config["modules_to_save"].is_null());
    options->init_ia3_weights = config.value("init_ia3_weights", true);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("adapter_config.json: ") + e.what());
  }
  auto field = [&](const char* key) { return config.contains(key) ? config[key] : nlohmann::json(); };
  // PEFT takes the model family's default for a null value; an empty list does the same here.
  options->target_modules = targets_from_json(field("target_modules"), "target_modules");
  if (!field("feedforward_modules").is_null()) {
    options->feedforward_modules = targets_from_json(field("feedforward_modules"), "feedforward_modules");
    auto outside = not_in_targets(*options->feedforward_modules, options->target_modules);
    check(outside.empty() || options->target_modules.list.empty(),
          "adapter_config.json: feedforward_modules must be a subset of target_modules; [" + join(outside, ", ") +
              "] not among them");
    std::string bad_regex = regex_error(*options->feedforward_modules);
    check(bad_regex.empty(), "adapter_config.json: feedforward_modules: " + bad_regex);
  }
  options->exclude_modules = targets_from_json(field("exclude_modules"), "exclude_modules");
  return options;
}

std::unique_ptr<Method> make_ia3(std::shared_ptr<const MethodOptions> options) {
  auto ia3 = std::dynamic_pointer_cast<const Ia3Options>(options);
  check(ia3 != nullptr, "internal: (IA)³ built from options of another method");
  return std::make_unique<Ia3>(std::move(ia3));
}

}  // namespace peft
