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

namespace F = torch::nn::functional;

// s·B·A and the row norms ‖W0 + s·B·A‖ (out) in float32, as PEFT's DoRA computes them (get_weight_norm).
torch::Tensor dora_row_norms(const torch::Tensor& weight, const torch::Tensor& delta) {
  return (weight.to(torch::kFloat) + delta).norm(2, {1});
}

class LoraHook : public ProjectionHook {
 public:
  // `magnitude` is DoRA's m (out), undefined for plain LoRA.
  LoraHook(WeightHolder a, WeightHolder b, double scale, double dropout, torch::Tensor magnitude)
      : a_(std::move(a)), b_(std::move(b)), magnitude_(std::move(magnitude)), scale_(scale), dropout_(dropout) {}

  torch::Tensor on_output(const ProjectionImpl& layer, const torch::Tensor& x, const torch::Tensor& y) override {
    auto input = x.to(a_->weight.scalar_type());
    bool dropping = dropout_ > 0 && a_->is_training();
    if (dropping) input = torch::dropout(input, dropout_, true);
    auto delta = F::linear(F::linear(input, a_->weight), b_->weight).mul_(scale_);  // (..., out): s·B·A·x
    if (!magnitude_.defined()) return y + delta.to(y.scalar_type());
    // DoRA: y' = f·(W0·x + s·B·A·x) + b with f = m / ‖W0 + s·B·A‖ per output row, the norm a constant for the
    // gradient (DoRA §4.3, as PEFT): so only m and the direction's LoRA factors get gradients through f·(...).
    torch::Tensor norms;
    {
      torch::NoGradGuard no_grad;
      norms = dora_row_norms(layer.dense_weight(), torch::matmul(b_->weight, a_->weight).mul_(scale_));
    }
    auto factor = magnitude_ / norms;  // (out)
    // W0·x without the bias, on the input the LoRA branch saw: the base output itself unless dropout changed the
    // input or another hook changed the output.
    torch::Tensor base;
    if (dropping || layer.hooks().size() > 1) {
      auto base_input = input.to(layer.weight.scalar_type());
      base = (layer.quantized() ? quantized_linear(base_input, layer.quantized()) : F::linear(base_input, layer.weight))
                 .to(torch::kFloat);
    } else {
      base = (layer.bias.defined() ? y - layer.bias : y).to(torch::kFloat);
    }
    return y + ((factor - 1) * base + factor * delta).to(y.scalar_type());
  }

  void merge_into(torch::Tensor& weight, torch::Tensor& bias) override {
    auto delta = torch::matmul(b_->weight, a_->weight).mul_(scale_);  // (out, in)
    if (!magnitude_.defined()) {
      weight.add_(delta.to(weight.scalar_type()));
      return;
    }
    // DoRA merges to m · (W0 + s·B·A) / ‖W0 + s·B·A‖; the bias is not scaled.
    auto combined = weight.to(torch::kFloat) + delta;
    auto factor = magnitude_ / combined.norm(2, {1});
    weight.copy_((factor.unsqueeze(1) * combined).to(weight.scalar_type()));
  }

 private:
  WeightHolder a_, b_;
  torch::Tensor magnitude_;
  double scale_, dropout_;
};

// Randomised SVD of w (out, in) to rank r (Halko et al.; torch.svd_lowrank's algorithm, which PEFT's
// pissa_niter_N uses): a range basis from w·Ω refined by `iterations` power steps, then the SVD of its projection.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> low_rank_svd(const torch::Tensor& w, int64_t r,
                                                                     int64_t iterations) {
  auto basis = [](const torch::Tensor& m) { return std::get<0>(torch::linalg_qr(m)); };
  auto q = basis(torch::matmul(w, torch::randn({w.size(1), r}, w.options())));
  for (int64_t i = 0; i < iterations; ++i) q = basis(torch::matmul(w, basis(torch::matmul(w.t(), q))));
  auto [u, s, vh] = torch::linalg_svd(torch::matmul(q.t(), w), /*full_matrices=*/false);
  return {torch::matmul(q, u), s, vh};
}

// PiSSA / OLoRA: A and B from W0 (float32), such that s·B·A is W0's principal part (PiSSA: √(S_r/s)·V_rᵀ and
// U_r·√(S_r/s)) or its first r QR components (OLoRA: R_r and Q_r).
std::pair<torch::Tensor, torch::Tensor> factorised_init(const torch::Tensor& weight, int64_t r, double scale,
                                                        const std::string& kind) {
  auto w = weight.to(torch::kFloat);
  if (kind == "olora") {
    auto [q, upper] = torch::linalg_qr(w);
    return {upper.narrow(0, 0, r).contiguous(), q.narrow(1, 0, r).contiguous()};
  }
  torch::Tensor u, s, vh;
  if (kind == "pissa") {
    std::tie(u, s, vh) = torch::linalg_svd(w, /*full_matrices=*/false);
  } else {
    std::tie(u, s, vh) = low_rank_svd(w, r, std::stoll(kind.substr(std::string("pissa_niter_").size())));
  }
  auto root = (s.narrow(0, 0, r) / scale).sqrt();
  return {(root.unsqueeze(1) * vh.narrow(0, 0, r)).contiguous(), (u.narrow(1, 0, r) * root).contiguous()};
}

struct LoraSite {
  std::string path;  // module path, e.g. model.layers.0.self_attn.q_proj
  WeightHolder a{nullptr}, b{nullptr};
  torch::Tensor magnitude;             // DoRA's m (out); undefined without DoRA
  torch::Tensor initial_a, initial_b;  // PiSSA / OLoRA: the factors taken out of W0, for the converted adapter
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
      LoraSite site;
      if (o.moves_base_weights()) {
        check(o.r <= std::min(projection->in_features, projection->out_features),
              "peft.init_lora_weights " + o.init_lora_weights + ": r " + std::to_string(o.r) + " exceeds the rank of " +
                  path + " (" + std::to_string(projection->out_features) + "x" +
                  std::to_string(projection->in_features) + ")");
        auto weight = projection->dense_weight();
        std::tie(a, b) = factorised_init(weight, o.r, o.scale(), o.init_lora_weights);
        // The base keeps W0 - s·B·A, so the adapted layer starts as W0 (up to rounding in a 16-bit base). A quantized
        // base keeps the residual quantized as it was (PiSSA's point there: less quantization error).
        auto residual = (weight.to(torch::kFloat) - torch::matmul(b, a).mul_(o.scale())).to(weight.scalar_type());
        if (auto quantized = projection->quantized()) {
          projection->set_quantized(std::make_shared<const QuantizedWeight>(quantize_like(residual, *quantized)));
        } else {
          projection->weight.copy_(residual);
        }
        site.initial_a = a.clone(), site.initial_b = b.clone();
      } else if (o.init_lora_weights == "gaussian") {
        a.normal_(0.0, 1.0 / static_cast<double>(o.r));
      } else {
        torch::nn::init::kaiming_uniform_(a, std::sqrt(5.0));
      }
      // PEFT's "false": both matrices random (nn.Linear's init), so the adapter is not a no-op at start.
      if (o.init_lora_weights == "false") torch::nn::init::kaiming_uniform_(b, std::sqrt(5.0));
      site.path = path;
      site.projection = projection;
      site.a = WeightHolder(a.requires_grad_());
      site.b = WeightHolder(b.requires_grad_());
      projection->register_module("lora_A", site.a);
      projection->register_module("lora_B", site.b);
      if (o.use_dora) {
        // m starts at the row norms of the adapted weight, so DoRA starts where LoRA does.
        check_name_free(*projection, path, "lora_magnitude_vector");
        site.magnitude =
            dora_row_norms(projection->dense_weight(), torch::matmul(b, a).mul_(o.scale())).requires_grad_();
        projection->register_parameter("lora_magnitude_vector", site.magnitude);
      }
      projection->add_hook(std::make_shared<LoraHook>(site.a, site.b, o.scale(), o.lora_dropout, site.magnitude));
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
      if (site.magnitude.defined()) out.push_back({site.path + ".lora_magnitude_vector", site.magnitude, true});
    }
    for (const auto& bias : biases_) out.push_back(bias);
    return out;
  }

  std::map<std::string, torch::Tensor> adapter_tensors() const override {
    auto tensors = Method::adapter_tensors();
    if (!options_->moves_base_weights()) return tensors;
    // On the original W0 the trained layer is W0 + s·(B·A - B0·A0): a plain LoRA of rank 2r with A' = [A; A0] and
    // B' = [B, -B0] (PEFT's conversion), which any tool applies to the unmodified base.
    torch::NoGradGuard no_grad;
    for (const auto& site : sites_) {
      std::string key = "base_model.model." + site.path;
      tensors[key + ".lora_A.weight"] = torch::cat({site.a->weight, site.initial_a}, 0).to(torch::kCPU).contiguous();
      tensors[key + ".lora_B.weight"] = torch::cat({site.b->weight, -site.initial_b}, 1).to(torch::kCPU).contiguous();
    }
    return tensors;
  }

  nlohmann::json adapter_config(const std::string& base_model_path) const override {
    const auto& o = *options_;
    nlohmann::json target = targets_to_json(o.target_modules, saved_targets_);
    nlohmann::json exclude = nullptr;
    if (o.exclude_modules.is_list && !o.exclude_modules.list.empty()) exclude = o.exclude_modules.list;
    if (!o.exclude_modules.is_list) exclude = o.exclude_modules.string;
    auto config = common_adapter_config(base_model_path, "LORA");
    config.update({
        {"alpha_pattern", nlohmann::json::object()},
        {"bias", o.bias},
        {"corda_config", nullptr},
        {"eva_config", nullptr},
        {"exclude_modules", exclude},
        {"fan_in_fan_out", fan_in_fan_out_},
        {"init_lora_weights", init_lora_weights_json(o)},
        {"layer_replication", nullptr},
        {"layers_pattern", nullptr},
        {"layers_to_transform", nullptr},
        {"loftq_config", nlohmann::json::object()},
        {"lora_alpha", saved_alpha(o)},
        {"lora_bias", false},
        {"lora_dropout", o.lora_dropout},
        {"megatron_config", nullptr},
        {"megatron_core", "megatron.core"},
        {"r", o.moves_base_weights() ? 2 * o.r : o.r},
        {"rank_pattern", nlohmann::json::object()},
        {"target_modules", target},
        {"trainable_token_indices", nullptr},
        {"use_dora", o.use_dora},
        {"use_rslora", o.use_rslora},
    });
    return config;
  }

  void merge(Model& model) override {
    for (auto& site : sites_) site.projection->merge_hooks();
    for (auto& parameter : trainable_parameters()) parameter.tensor.set_requires_grad(false);  // now in the weights
  }

 protected:
  std::string tensor_settings() const override { return "target_modules or bias"; }

 private:
  // The converted adapter of PiSSA / OLoRA is a plain LoRA of rank 2r: init_lora_weights true, and α doubled
  // (×√2 with rsLoRA) so that the scale stays the same.
  static nlohmann::json init_lora_weights_json(const LoraOptions& o) {
    if (o.init_lora_weights == "true" || o.init_lora_weights == "false") return o.init_lora_weights == "true";
    if (o.moves_base_weights()) return true;
    return o.init_lora_weights;
  }
  static double saved_alpha(const LoraOptions& o) {
    if (!o.moves_base_weights()) return o.lora_alpha;
    return o.use_rslora ? o.lora_alpha * std::sqrt(2.0) : 2 * o.lora_alpha;
  }

  std::shared_ptr<const LoraOptions> options_;
  std::vector<LoraSite> sites_;
  std::vector<TrainableParameter> biases_;
  std::vector<std::string> saved_targets_;
  bool fan_in_fan_out_ = false;
};

// true, false, gaussian, pissa, pissa_niter_N or olora (YAML's true/false arrive as text).
bool valid_init(const std::string& init) {
  static const std::string niter = "pissa_niter_";
  if (init.rfind(niter, 0) == 0) {
    std::string digits = init.substr(niter.size());
    return !digits.empty() && digits.size() <= 6 && digits.find_first_not_of("0123456789") == std::string::npos;
  }
  return init == "true" || init == "false" || init == "gaussian" || init == "pissa" || init == "olora";
}

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
  section.get("init_lora_weights", init_lora_weights);
  section.get("use_dora", use_dora);
  if (r <= 0) section.fail("r", "must be a positive integer, got " + std::to_string(r));
  if (!valid_init(init_lora_weights)) {
    section.fail("init_lora_weights", "must be true, false, gaussian, pissa, pissa_niter_N (N >= 0) or olora, got '" +
                                          init_lora_weights + "'");
  }
  if (use_dora && moves_base_weights()) {
    section.fail("init_lora_weights", init_lora_weights +
                                          " with use_dora is not supported (its converted adapter "
                                          "has no magnitude to carry over)");
  }
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
    options->use_dora = config.value("use_dora", false);
    // PEFT's own PiSSA / OLoRA adapters (not converted) hold factors for the residual base: PEFT recomputes it
    // from the base when it loads them, and so does this tool; a randomised factorisation cannot be recomputed.
    auto init = config.find("init_lora_weights");
    if (init != config.end() && init->is_string()) options->init_lora_weights = init->get<std::string>();
    check(valid_init(options->init_lora_weights),
          "adapter_config.json: init_lora_weights '" + options->init_lora_weights + "' is not supported");
    check(!(options->use_dora && options->moves_base_weights()),
          "adapter_config.json: init_lora_weights " + options->init_lora_weights + " with use_dora is not supported");
    check(options->init_lora_weights.rfind("pissa_niter_", 0) != 0,
          "adapter_config.json: init_lora_weights " + options->init_lora_weights +
              " (randomised PiSSA) cannot be loaded: its residual base weights cannot be recomputed; save it converted "
              "to plain LoRA (PEFT's path_initial_model_for_weight_conversion)");
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
