#include "peft/adapter.h"

#include <cmath>

#include "core/error.h"
#include "core/strings.h"
#include "models/causal_lm.h"
#include "peft/adapter_io.h"
#include "peft/registration.h"

namespace peft {
namespace {

const std::vector<std::string> kPlacements = {"serial", "parallel"};
const std::vector<std::string> kSites = {"attn", "ffn", "both"};
const std::vector<std::string> kActivations = {"relu", "gelu", "silu", "tanh"};
const std::vector<std::string> kInits = {"houlsby", "lora"};

// One linear map's weight and bias, so that parameters are named down.weight / down.bias.
class AffineImpl : public torch::nn::Module {
 public:
  AffineImpl(torch::Tensor w, torch::Tensor b) {
    weight = register_parameter("weight", std::move(w));
    bias = register_parameter("bias", std::move(b));
  }
  torch::Tensor weight, bias;
};
TORCH_MODULE(Affine);

class BottleneckImpl : public torch::nn::Module {
 public:
  BottleneckImpl(Affine d, Affine u)
      : down(register_module("down", std::move(d))), up(register_module("up", std::move(u))) {}
  Affine down, up;
};
TORCH_MODULE(Bottleneck);

torch::Tensor activate(const std::string& name, const torch::Tensor& x) {
  if (name == "relu") return torch::relu(x);
  if (name == "gelu") return torch::gelu(x);
  if (name == "silu") return torch::silu(x);
  return torch::tanh(x);
}

// N(0, std²) truncated at ±2σ by redrawing the values outside (Houlsby et al.'s near-identity init).
void truncated_normal_(torch::Tensor& t, double std) {
  t.normal_(0.0, std);
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto outside = t.abs() > 2.0 * std;
    int64_t count = outside.sum().item<int64_t>();
    if (count == 0) return;
    t.masked_scatter_(outside, torch::empty({count}, t.options()).normal_(0.0, std));
  }
  t.clamp_(-2.0 * std, 2.0 * std);  // practically unreachable; keeps the promise regardless
}

struct AdapterSite {
  std::string path;  // e.g. model.layers.3.attn_adapter
  int64_t layer;
  Sublayer sublayer;
  Bottleneck module{nullptr};
};

class AdapterHook : public SublayerHook {
 public:
  AdapterHook(const AdapterOptions& options, int64_t layers)
      : parallel_(options.placement == "parallel"),
        activation_(options.activation),
        scaling_(options.scaling),
        attention_(layers, Bottleneck(nullptr)),
        feed_forward_(layers, Bottleneck(nullptr)) {}

  void add(const AdapterSite& site) {
    (site.sublayer == Sublayer::attention ? attention_ : feed_forward_).at(site.layer) = site.module;
  }

  torch::Tensor apply(int64_t layer, Sublayer sublayer, const torch::Tensor& normed_input, const torch::Tensor&,
                      const torch::Tensor& output) override {
    const auto& modules = sublayer == Sublayer::attention ? attention_ : feed_forward_;
    if (layer < 0 || layer >= static_cast<int64_t>(modules.size()) || modules[layer].is_empty()) return output;
    const auto& m = modules[layer];
    namespace F = torch::nn::functional;
    // Computed in the adapter's float32 and cast back to the model's dtype, as LoRA does.
    auto z = (parallel_ ? normed_input : output).to(m->down->weight.scalar_type());
    auto a = F::linear(activate(activation_, F::linear(z, m->down->weight, m->down->bias)), m->up->weight, m->up->bias);
    if (parallel_) a = a * scaling_;
    return output + a.to(output.scalar_type());
  }

 private:
  bool parallel_;
  std::string activation_;
  double scaling_;
  std::vector<Bottleneck> attention_, feed_forward_;
};

class Adapter : public Method {
 public:
  explicit Adapter(std::shared_ptr<const AdapterOptions> options) : options_(std::move(options)) {}

  std::string name() const override { return "adapter"; }

  void attach(Model& base) override {
    Transformer& model = require_transformer(base, name());
    const auto& o = *options_;
    const auto& c = model.config();
    int64_t d = c.hidden_size;
    r_ = o.r;
    if (o.reduction_factor > 0) {
      r_ = d / o.reduction_factor;
      check(r_ >= 1, "peft.reduction_factor " + std::to_string(o.reduction_factor) + " exceeds hidden_size " +
                         std::to_string(d) + " (r would be 0)");
    }
    check(r_ >= 1, "peft.r must be at least 1, got " + std::to_string(r_));
    auto modules = model.named_modules();
    hook_ = std::make_shared<AdapterHook>(o, c.num_hidden_layers);
    bool lora_init = o.resolved_init() == "lora";
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      std::string layer_path = model.block_path(i);
      check(modules.contains(layer_path), "bottleneck adapters: the model has no module '" + layer_path + "'");
      auto layer = modules[layer_path];
      auto device = layer->parameters().at(0).device();
      auto options = torch::TensorOptions().dtype(torch::kFloat).device(device);
      for (Sublayer sublayer : {Sublayer::attention, Sublayer::feed_forward}) {
        bool attention = sublayer == Sublayer::attention;
        if (o.sites != "both" && o.sites != (attention ? "attn" : "ffn")) continue;
        std::string name = attention ? "attn_adapter" : "ffn_adapter";
        check_name_free(*layer, layer_path, name);
        auto down = torch::empty({r_, d}, options);
        auto up = torch::zeros({d, r_}, options);
        if (lora_init) {
          torch::nn::init::kaiming_uniform_(down, std::sqrt(5.0));
        } else {
          truncated_normal_(down, 1e-2);
          truncated_normal_(up, 1e-2);
        }
        Bottleneck module(Affine(down.requires_grad_(), torch::zeros({r_}, options).requires_grad_()),
                          Affine(up.requires_grad_(), torch::zeros({d}, options).requires_grad_()));
        layer->register_module(name, module);
        AdapterSite site{layer_path + "." + name, i, sublayer, module};
        hook_->add(site);
        sites_.push_back(site);
      }
      if (o.train_norms) {
        auto parameters = layer->named_parameters();
        for (const auto& norm : model.block_norms()) {
          check(parameters.contains(norm),
                "peft.train_norms: the model has no parameter '" + layer_path + "." + norm + "'");
          auto weight = parameters[norm];
          weight.set_requires_grad(true);
          norms_.push_back({layer_path + "." + norm, weight, false});  // no decay: scales and shifts
        }
      }
    }
    model.hooks.sublayer.push_back(hook_);
  }

  std::vector<std::string> targets() const override {
    std::vector<std::string> out;
    for (const auto& site : sites_) out.push_back(site.path);
    return out;
  }

  std::vector<TrainableParameter> trainable_parameters() const override {
    std::vector<TrainableParameter> out;
    for (const auto& site : sites_) {
      // Biases exempt from decay, as is usual for biases.
      out.push_back({site.path + ".down.weight", site.module->down->weight, true});
      out.push_back({site.path + ".down.bias", site.module->down->bias, false});
      out.push_back({site.path + ".up.weight", site.module->up->weight, true});
      out.push_back({site.path + ".up.bias", site.module->up->bias, false});
    }
    for (const auto& norm : norms_) out.push_back(norm);  // scale vectors: decay would pull them to zero
    return out;
  }

  nlohmann::json adapter_config(const std::string& base_model_path) const override {
    const auto& o = *options_;
    auto config = common_adapter_config(base_model_path, "BOTTLENECK_ADAPTER");
    config.update({
        {"activation", o.activation},
        {"init", o.resolved_init()},
        {"placement", o.placement},
        {"r", r_},  // resolved: a reduction_factor is saved as the width it gave
        {"scaling", o.placement == "parallel" ? nlohmann::json(o.scaling) : nlohmann::json(nullptr)},
        {"sites", o.sites},
        {"train_norms", o.train_norms},
    });
    return config;
  }

  void merge(Model&) override {
    throw Error("bottleneck adapters cannot be merged into the base weights (they add a nonlinear module)");
  }
  bool mergeable() const override { return false; }

 protected:
  std::string tensor_settings() const override { return "sites, r or train_norms"; }

 private:
  std::shared_ptr<const AdapterOptions> options_;
  int64_t r_ = 0;
  std::shared_ptr<AdapterHook> hook_;
  std::vector<AdapterSite> sites_;
  std::vector<TrainableParameter> norms_;
};

bool one_of(const std::string& value, const std::vector<std::string>& allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end();
}

}  // namespace

std::string AdapterOptions::resolved_init() const {
  if (!init.empty()) return init;
  return placement == "parallel" ? "lora" : "houlsby";
}

void AdapterOptions::read(Section& section) {
  section.get_choice("placement", placement, kPlacements);
  section.get_choice("sites", sites, kSites);
  if (section.has("r") && section.has("reduction_factor")) {
    section.fail("reduction_factor",
                 "give either r or reduction_factor (r = hidden_size / reduction_factor), not both");
  }
  if (section.has("reduction_factor")) {
    section.get("reduction_factor", reduction_factor);
    if (reduction_factor < 1) section.fail("reduction_factor", "must be at least 1");
  } else {
    section.get("r", r);
    if (r < 1) section.fail("r", "must be at least 1");
  }
  section.get_choice("activation", activation, kActivations);
  if (section.has("scaling") && placement != "parallel") {
    section.fail("scaling", "applies only to placement: parallel (a serial adapter is not scaled)");
  }
  if (placement == "parallel") section.get("scaling", scaling);
  std::string chosen = resolved_init();
  section.get_choice("init", chosen, kInits);
  init = chosen;
  section.get("train_norms", train_norms);
}

std::shared_ptr<MethodOptions> AdapterOptions::from_adapter_config(const nlohmann::json& config) {
  auto options = std::make_shared<AdapterOptions>();
  auto choice = [&](const char* key, std::string& value, const std::vector<std::string>& allowed) {
    if (!config.contains(key)) return;
    check(config[key].is_string() && one_of(config[key].get<std::string>(), allowed),
          std::string("adapter_config.json: '") + key + "' must be one of " + join(allowed, ", ") + ", got " +
              config[key].dump());
    value = config[key].get<std::string>();
  };
  choice("placement", options->placement, kPlacements);
  choice("sites", options->sites, kSites);
  choice("activation", options->activation, kActivations);
  choice("init", options->init, kInits);
  check(config.contains("r") && config["r"].is_number_integer() && config["r"].get<int64_t>() >= 1,
        "adapter_config.json: 'r' must be a positive integer");
  options->r = config["r"].get<int64_t>();
  if (config.contains("scaling") && !config["scaling"].is_null()) {
    check(config["scaling"].is_number(), "adapter_config.json: 'scaling' must be a number");
    options->scaling = config["scaling"].get<double>();
  }
  if (config.contains("train_norms")) {
    check(config["train_norms"].is_boolean(), "adapter_config.json: 'train_norms' must be true or false");
    options->train_norms = config["train_norms"].get<bool>();
  }
  return options;
}

std::unique_ptr<Method> make_adapter(std::shared_ptr<const MethodOptions> options) {
  auto adapter = std::dynamic_pointer_cast<const AdapterOptions>(options);
  check(adapter != nullptr, "internal: bottleneck adapter built from options of another method");
  return std::make_unique<Adapter>(std::move(adapter));
}

}  // namespace peft
