#include "models/decoder/rotary.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "models/config_keys.h"
#include "models/decoder/decoder_config.h"

namespace peft {
namespace {

using nlohmann::json;

double number(const json& object, const std::string& where, const char* key, double fallback, bool required) {
  double value = fallback;
  read_key(object, where, key, value, required);
  check(std::isfinite(value), where + ": key '" + key + "' must be a finite number");
  return value;
}

std::vector<double> factor_list(const json& object, const std::string& where, const char* key, int64_t size) {
  std::vector<double> values;
  read_key(object, where, key, values, /*required=*/false);
  check(!values.empty(), where + ": longrope needs '" + key + "', a list of " + std::to_string(size) +
                             " factors (one per rotary frequency)");
  check(static_cast<int64_t>(values.size()) == size,
        where + ": '" + key + "' has " + std::to_string(values.size()) + " factors but the rotary dimension " +
            std::to_string(2 * size) + " has " + std::to_string(size) + " frequencies");
  for (double value : values) check(std::isfinite(value) && value > 0, where + ": '" + key + "' must be positive");
  return values;
}

// One rope_scaling / rope_parameters object into `spec`; `where` names it in messages ("FILE: rope_scaling").
void read_scaling(const json& scaling, const std::string& where, const json& config_json, const ModelConfig& config,
                  RopeSpec& spec) {
  check(scaling.is_object(), where + " must be an object");
  std::string type = "default";
  read_key(scaling, where, "type", type);
  read_key(scaling, where, "rope_type", type);  // the newer name wins where both are written
  if (type == "su") type = "longrope";          // Phi-3's first name for it, as transformers maps it
  spec.type = type;
  auto original_max = [&]() {
    int64_t original = 0;
    read_key(scaling, where, "original_max_position_embeddings", original);
    if (original == 0) read_key(config_json, where, "original_max_position_embeddings", original);
    return original;
  };
  if (type == "default") return;
  if (type == "linear") {
    spec.factor = number(scaling, where, "factor", 1.0, true);
    check(spec.factor > 0, where + ": factor must be positive");
  } else if (type == "llama3") {
    spec.factor = number(scaling, where, "factor", 1.0, true);
    spec.low_freq_factor = number(scaling, where, "low_freq_factor", 1.0, true);
    spec.high_freq_factor = number(scaling, where, "high_freq_factor", 4.0, true);
    read_key(scaling, where, "original_max_position_embeddings", spec.original_max_positions, true);
    check(spec.factor > 0 && spec.low_freq_factor > 0 && spec.original_max_positions > 0,
          where + ": llama3 factor, low_freq_factor and original_max_position_embeddings must be positive");
    check(spec.high_freq_factor > spec.low_freq_factor, where + ": llama3 needs high_freq_factor > low_freq_factor");
  } else if (type == "yarn") {
    // The correction range is measured against the pretraining context; without a factor, as transformers, the
    // context ratio is the factor.
    int64_t original = original_max();
    check(original > 0 || scaling.contains("factor"), where + ": yarn needs 'factor'");
    if (original <= 0) original = config.max_position_embeddings;
    spec.original_max_positions = original;
    spec.factor = number(scaling, where, "factor",
                         static_cast<double>(config.max_position_embeddings) / static_cast<double>(original), false);
    check(spec.factor > 0, where + ": factor must be positive");
    spec.beta_fast = number(scaling, where, "beta_fast", 32.0, false);
    spec.beta_slow = number(scaling, where, "beta_slow", 1.0, false);
    read_key(scaling, where, "truncate", spec.truncate);
    auto mscale = [](double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; };
    double m = number(scaling, where, "mscale", 0.0, false), m_all = number(scaling, where, "mscale_all_dim", 0.0, false);
    spec.attention_factor = m != 0 && m_all != 0 ? mscale(spec.factor, m) / mscale(spec.factor, m_all)
                                                 : mscale(spec.factor, 1.0);
    spec.attention_factor = number(scaling, where, "attention_factor", spec.attention_factor, false);
  } else if (type == "longrope") {
    int64_t half = spec.dim / 2;
    spec.long_factor = factor_list(scaling, where, "long_factor", half);
    spec.short_factor = factor_list(scaling, where, "short_factor", half);
    int64_t original = original_max();
    double factor = number(scaling, where, "factor", 1.0, false);
    if (original > 0) {
      factor = static_cast<double>(config.max_position_embeddings) / static_cast<double>(original);
    } else {
      original = config.max_position_embeddings;
    }
    spec.original_max_positions = original;
    spec.factor = factor;
    double attention = factor <= 1.0 ? 1.0 : std::sqrt(1.0 + std::log(factor) / std::log(static_cast<double>(original)));
    spec.attention_factor = number(scaling, where, "attention_factor", attention, false);
  } else if (type == "dynamic") {
    throw Error(where + ": rope type 'dynamic' is not supported (transformers' dynamic NTK scaling keeps the "
                        "frequencies of the longest sequence it has seen, so a sequence's result depends on the ones "
                        "before it)");
  } else {
    throw Error(where + ": rope type '" + type + "' is not supported (supported: default, linear, llama3, yarn, "
                        "longrope)");
  }
}

// A RopeSpec from rope_theta (or the object's own rope_theta) and an optional scaling object.
RopeSpec make_spec(const ModelConfig& config, double theta, const json* scaling, const std::string& where,
                   const json& config_json) {
  RopeSpec spec;
  spec.theta = theta;
  spec.dim = config.rope.dim;
  check(std::isfinite(spec.theta) && spec.theta > 0, where + ": rope_theta must be positive");
  if (scaling && !scaling->is_null()) read_scaling(*scaling, where, config_json, config, spec);
  return spec;
}

}  // namespace

void read_rope(const json& config_json, const std::string& file, ModelConfig& config) {
  double partial = 1.0;
  read_key(config_json, file, "partial_rotary_factor", partial);
  const json* parameters = nullptr;
  if (auto it = config_json.find("rope_parameters"); it != config_json.end() && !it->is_null()) {
    check(it->is_object(), file + ": rope_parameters must be an object");
    parameters = &*it;
    read_key(*parameters, file + ": rope_parameters", "partial_rotary_factor", partial);
  }
  check(partial > 0 && partial <= 1, file + ": partial_rotary_factor must be in (0, 1]");
  config.rope.dim = static_cast<int64_t>(static_cast<double>(config.head_dim) * partial);
  check(config.rope.dim >= 2 && config.rope.dim % 2 == 0,
        file + ": the rotary dimension (head_dim × partial_rotary_factor = " + std::to_string(config.rope.dim) +
            ") must be even and positive");

  double theta = 10000.0;
  read_key(config_json, file, "rope_theta", theta);
  if (!parameters) {
    auto it = config_json.find("rope_scaling");
    config.rope = make_spec(config, theta, it == config_json.end() ? nullptr : &*it, file + ": rope_scaling",
                            config_json);
    return;
  }
  // transformers 5: one object, or one per layer type (Gemma 3: full_attention, sliding_attention).
  auto per_type = [&](const char* key) -> const json* {
    auto it = parameters->find(key);
    return it != parameters->end() && it->is_object() ? &*it : nullptr;
  };
  const json* full = per_type("full_attention");
  const json* sliding = per_type("sliding_attention");
  auto spec_of = [&](const json& object, const std::string& where) {
    double own_theta = theta;
    read_key(object, where, "rope_theta", own_theta);
    return make_spec(config, own_theta, &object, where, config_json);
  };
  if (!full && !sliding) {
    config.rope = spec_of(*parameters, file + ": rope_parameters");
    return;
  }
  check(full != nullptr, file + ": rope_parameters has 'sliding_attention' but no 'full_attention'");
  config.rope = spec_of(*full, file + ": rope_parameters.full_attention");
  if (sliding) {
    config.local_rope = true;
    config.rope_local = spec_of(*sliding, file + ": rope_parameters.sliding_attention");
  }
}

torch::Tensor inverse_frequencies(const RopeSpec& spec, bool long_context) {
  // 1 / theta^(2i / dim), in float32 as transformers computes it.
  auto exponents =
      torch::arange(0, spec.dim, 2, torch::dtype(torch::kLong)).to(torch::kFloat) / static_cast<float>(spec.dim);
  auto powers = torch::pow(static_cast<float>(spec.theta), exponents);
  auto inv_freq = 1.0 / powers;
  if (spec.type == "linear") return inv_freq / spec.factor;
  if (spec.type == "llama3") {
    // Long wavelengths are slowed by `factor`, short ones kept, and the band between interpolated smoothly.
    double context = static_cast<double>(spec.original_max_positions);
    double low_wavelength = context / spec.low_freq_factor, high_wavelength = context / spec.high_freq_factor;
    auto wavelength = 2 * M_PI / inv_freq;
    auto scaled = torch::where(wavelength > low_wavelength, inv_freq / spec.factor, inv_freq);
    auto smooth = (context / wavelength - spec.low_freq_factor) / (spec.high_freq_factor - spec.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / spec.factor + smooth * scaled;
    auto medium = (wavelength >= high_wavelength) & (wavelength <= low_wavelength);
    return torch::where(medium, smoothed, scaled);
  }
  if (spec.type == "yarn") {
    // Frequencies below the correction range interpolate (÷ factor), those above extrapolate, a ramp between.
    double dim = static_cast<double>(spec.dim), context = static_cast<double>(spec.original_max_positions);
    auto correction_dim = [&](double rotations) {
      return dim * std::log(context / (rotations * 2 * M_PI)) / (2 * std::log(spec.theta));
    };
    double low = correction_dim(spec.beta_fast), high = correction_dim(spec.beta_slow);
    if (spec.truncate) low = std::floor(low), high = std::ceil(high);
    low = std::max(low, 0.0), high = std::min(high, dim - 1);
    if (low == high) high += 0.001;  // no division by zero
    auto ramp = ((torch::arange(spec.dim / 2, torch::dtype(torch::kFloat)) - low) / (high - low)).clamp(0, 1);
    auto extrapolation_weight = 1 - ramp;
    auto interpolated = 1.0 / (spec.factor * powers);
    return interpolated * (1 - extrapolation_weight) + inv_freq * extrapolation_weight;
  }
  if (spec.type == "longrope") {
    const auto& factors = long_context ? spec.long_factor : spec.short_factor;
    auto divisors = torch::tensor(std::vector<float>(factors.begin(), factors.end()), torch::kFloat);
    return 1.0 / (divisors * powers);
  }
  return inv_freq;
}

std::pair<torch::Tensor, torch::Tensor> RotaryTables::get(int64_t length, int64_t span, const torch::Device& device,
                                                          torch::Dtype dtype) {
  bool long_context = spec_.type == "longrope" && span > spec_.original_max_positions;
  if (!cos_.defined() || cos_.size(0) < length || cos_.device() != device || cos_.scalar_type() != dtype ||
      long_context != long_context_) {
    int64_t cached = std::max<int64_t>(length, cos_.defined() && long_context == long_context_ ? cos_.size(0) : 0);
    auto positions = torch::arange(cached, torch::dtype(torch::kLong)).to(torch::kFloat);
    auto freqs = torch::outer(positions, inverse_frequencies(spec_, long_context));  // (T, dim / 2)
    auto angles = torch::cat({freqs, freqs}, -1);                                     // (T, dim)
    cos_ = (angles.cos() * spec_.attention_factor).to(dtype).to(device);
    sin_ = (angles.sin() * spec_.attention_factor).to(dtype).to(device);
    long_context_ = long_context;
  }
  return {cos_.narrow(0, 0, length), sin_.narrow(0, 0, length)};
}

namespace {

// HF's rotate_half: (x1, x2) -> (-x2, x1) over the two halves of the last dimension.
torch::Tensor rotate_half(const torch::Tensor& x) {
  int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  int64_t dim = cos.size(-1);
  if (dim == x.size(-1)) return x * cos + rotate_half(x) * sin;
  auto rotated = x.narrow(-1, 0, dim);
  return torch::cat({rotated * cos + rotate_half(rotated) * sin, x.narrow(-1, dim, x.size(-1) - dim)}, -1);
}

}  // namespace peft
