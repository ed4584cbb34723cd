#include "peft/lst.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "core/strings.h"
#include "models/causal_lm.h"
#include "peft/adapter_io.h"
#include "peft/lst_pruning.h"
#include "peft/registration.h"

namespace peft {
namespace {

const char* const kSideNetwork = "side_network";

// Down₀ … Down_n, the gates α, the side stack and Up, registered on the model as `side_network`.
struct SideNetworkImpl : torch::nn::Module {
  SideNetworkImpl(const CausalLM& model, const ModelConfig& side_config, const torch::TensorOptions& options) {
    int64_t d = model.config().hidden_size, narrow = side_config.hidden_size;
    int64_t ladders = side_config.num_hidden_layers;
    auto list = register_module("downsamplers", torch::nn::ModuleList());
    for (int64_t i = 0; i <= ladders; ++i) {
      downsamplers.push_back(torch::nn::Linear(d, narrow));
      list->push_back(downsamplers.back());
    }
    gates = register_parameter("gates", torch::zeros({ladders}));
    stack = register_module("stack", model.make_block_stack(side_config, options));
    upsampler = register_module("upsampler", torch::nn::Linear(narrow, d));
    to(options.device());
  }

  std::vector<torch::nn::Linear> downsamplers;
  torch::Tensor gates;  // α, one per side layer
  std::shared_ptr<BlockStack> stack;
  torch::nn::Linear upsampler{nullptr};
};
TORCH_MODULE(SideNetwork);

// Backbone states of training sequences, keyed by their tokens. Only right-padded batches are cached (what
// collate() makes); a row's states cover its real tokens, and padding positions are rebuilt as zeros, which no
// real position can see (causal attention, masked keys).
class BackboneCache {
 public:
  // (tokens as bytes, length) per row of a batch; empty when the batch is not right-padded (not cacheable).
  using Rows = std::vector<std::pair<std::string, int64_t>>;
  static Rows rows_of(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    auto ids = input_ids.to(torch::kCPU, torch::kLong).contiguous();
    auto mask = attention_mask.to(torch::kCPU, torch::kBool);
    auto lengths = mask.sum(1);
    auto right_padded = torch::arange(mask.size(1)).unsqueeze(0) < lengths.unsqueeze(1);
    if (!right_padded.equal(mask)) return {};
    Rows rows;
    for (int64_t r = 0; r < ids.size(0); ++r) {
      int64_t length = lengths[r].item<int64_t>();
      const char* bytes = reinterpret_cast<const char*>(ids[r].data_ptr<int64_t>());
      rows.emplace_back(std::string(bytes, static_cast<size_t>(length) * sizeof(int64_t)), length);
    }
    return rows;
  }

  // The batch's states (B = rows.size(), T = length) when every row is cached.
  std::optional<BackboneStates> find(const Rows& rows, int64_t length) {
    if (rows.empty()) return std::nullopt;
    std::vector<const torch::Tensor*> cached;
    for (const auto& [key, length] : rows) {
      auto it = states_.find(key);
      if (it == states_.end()) return std::nullopt;
      cached.push_back(&it->second);
    }
    const auto& first = *cached.front();  // (1 + n, length, d)
    auto all = torch::zeros({first.size(0), static_cast<int64_t>(rows.size()), length, first.size(2)}, first.options());
    for (size_t r = 0; r < cached.size(); ++r) {
      all.select(1, static_cast<int64_t>(r)).narrow(1, 0, cached[r]->size(1)).copy_(*cached[r]);
    }
    if (stats.hits++ == 0) {
      spdlog::info("backbone cache: reusing the states of {} sequence(s), {:.1f} MiB", stats.sequences,
                   static_cast<double>(stats.bytes) / (1 << 20));
    }
    BackboneStates states{all[0], {}};
    for (int64_t i = 1; i < all.size(0); ++i) states.blocks.push_back(all[i]);
    return states;
  }

  void insert(const Rows& rows, const BackboneStates& states) {
    ++stats.misses;
    if (rows.empty()) return;
    std::vector<torch::Tensor> layers = {states.embeddings};
    layers.insert(layers.end(), states.blocks.begin(), states.blocks.end());
    auto all = torch::stack(layers);  // (1 + n, B, T, d)
    for (size_t r = 0; r < rows.size(); ++r) {
      const auto& [key, length] = rows[r];
      if (states_.count(key)) continue;
      auto row = all.select(1, static_cast<int64_t>(r)).narrow(1, 0, length).clone();
      stats.bytes += row.numel() * static_cast<int64_t>(row.element_size());
      ++stats.sequences;
      states_.emplace(key, std::move(row));
    }
  }

  BackboneCacheStats stats;

 private:
  std::unordered_map<std::string, torch::Tensor> states_;  // (1 + n, length, d) each
};

// The forward pass: backbone states without autograd (or from the cache), then the side network.
class Ladder : public StackHook {
 public:
  Ladder(SideNetwork side, std::vector<int64_t> layers, double temperature, bool cache)
      : side_(std::move(side)), layers_(std::move(layers)), temperature_(temperature) {
    if (cache) cache_.emplace();
  }

  torch::Tensor hidden_states(CausalLM& model, const torch::Tensor& input_ids,
                              const torch::Tensor& attention_mask) override {
    BackboneStates states = backbone(model, input_ids, attention_mask);
    auto mu = torch::sigmoid(side_->gates / temperature_);
    auto s = side_->downsamplers[0](states.embeddings.to(torch::kFloat));
    auto ladder = [&](int64_t k, const torch::Tensor& x) {
      auto m = mu[k];
      return m * x + (1 - m) * side_->downsamplers[static_cast<size_t>(k) + 1](states.blocks[k].to(torch::kFloat));
    };
    auto out = side_->stack->forward(s, attention_mask, ladder);
    return side_->upsampler(out).to(states.embeddings.scalar_type());
  }

  const std::optional<BackboneCache>& cache() const { return cache_; }

 private:
  BackboneStates backbone(CausalLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
    bool cached = cache_ && side_->is_training();
    BackboneCache::Rows rows;  // the batch's keys, computed once for the lookup and the insertion
    if (cached) {
      rows = BackboneCache::rows_of(input_ids, attention_mask);
      if (auto states = cache_->find(rows, input_ids.size(1))) return *states;
    }
    BackboneStates states;
    {
      torch::NoGradGuard no_grad;  // the backbone is never part of the backward graph
      states = model.backbone_states(input_ids, attention_mask, layers_);
    }
    if (cached) cache_->insert(rows, states);
    return states;
  }

  SideNetwork side_;
  std::vector<int64_t> layers_;
  double temperature_;
  std::optional<BackboneCache> cache_;
};

// The side network reads a decoder's block stack and feeds its output head: LST here is for causal LMs.
CausalLM& causal_lm(Model& model) {
  auto* lm = dynamic_cast<CausalLM*>(&require_transformer(model, "lst"));
  check(lm != nullptr, "lst: Ladder Side-Tuning is implemented for causal language models (Llama, GPT-2), not for " +
                           model.config().architecture);
  return *lm;
}

class Lst : public Method {
 public:
  explicit Lst(std::shared_ptr<const LstOptions> options) : options_(std::move(options)) {}

  std::string name() const override { return "lst"; }

  void attach(Model& transformer) override {
    CausalLM& model = causal_lm(transformer);
    const auto& o = *options_;
    const auto& c = model.config();
    check(!model.hooks.stack, "the model already has a side network");
    layers_ = choose_layers(o.layers, c.num_hidden_layers);
    bool rotary = model.stack_layout().rotary;
    check_reduction_factor(o.reduction_factor, c, rotary);
    side_config_ = c;
    side_config_.hidden_size = c.hidden_size / o.reduction_factor;
    side_config_.head_dim = c.head_dim / o.reduction_factor;
    // The side blocks rotate their whole (narrower) heads with the backbone's rope type.
    check(!rotary || (c.rope.dim == c.head_dim && c.rope.type != "longrope"),
          "lst: Ladder Side-Tuning needs rotary embeddings over whole heads without longrope's per-frequency "
          "factors; " +
              c.architecture + " has partial rotary or longrope");
    side_config_.rope.dim = side_config_.rope_local.dim = side_config_.head_dim;
    side_config_.intermediate_size = c.intermediate_size / o.reduction_factor;
    side_config_.num_hidden_layers = static_cast<int64_t>(layers_.size());

    auto options = torch::TensorOptions().dtype(torch::kFloat).device(model.input_embeddings().device());
    check_name_free(model, "", kSideNetwork);
    side_ = model.register_module(kSideNetwork, SideNetwork(model, side_config_, options));
    initialise_randomly(c.raw.is_object() ? c.raw.value("initializer_range", 0.02) : 0.02);
    for (auto& parameter : side_->parameters()) parameter.set_requires_grad(true);
    ladder_ = std::make_shared<Ladder>(side_, layers_, o.gate_temperature, o.cache_backbone);
    model.hooks.stack = ladder_;
  }

  void initialise_from_data(Model& transformer, const std::vector<Example>& examples, int64_t pad_id) override {
    if (options_->init != "pruned") return;
    CausalLM& model = causal_lm(transformer);
    int64_t count = std::min<int64_t>(options_->prune_examples, static_cast<int64_t>(examples.size()));
    spdlog::info("lst: pruning the backbone into the side network by Fisher importance over {} example(s)", count);
    torch::Tensor hidden;
    {
      DenseWeights dense(model);  // the pruning differentiates and reads the backbone's weights
      auto fisher = fisher_information(model, examples, count, pad_id, std::string(kSideNetwork) + ".");
      hidden = prune_into(*side_->stack, model, fisher, layers_, options_->reduction_factor);
    }
    // Downᵢ reads the kept hidden dims and Up writes them back: the side network starts as the pruned backbone.
    torch::NoGradGuard no_grad;
    auto device = side_->gates.device();
    auto rows = torch::arange(hidden.size(0));
    for (auto& down : side_->downsamplers) {
      down->weight.zero_().index_put_({rows.to(device), hidden.to(device)}, torch::ones({}, down->weight.options()));
      down->bias.zero_();
    }
    side_->upsampler->weight.zero_().index_put_({hidden.to(device), rows.to(device)},
                                                torch::ones({}, side_->upsampler->weight.options()));
    side_->upsampler->bias.zero_();
  }

  std::vector<std::string> targets() const override {
    std::string layers;
    for (int64_t layer : layers_) layers += (layers.empty() ? "" : ", ") + std::to_string(layer);
    return {"side network of width " + std::to_string(side_config_.hidden_size) + " beside backbone layers " + layers};
  }

  std::vector<TrainableParameter> trainable_parameters() const override {
    std::vector<TrainableParameter> out;
    for (const auto& item : side_->named_parameters()) {
      out.push_back({std::string(kSideNetwork) + "." + item.key(), item.value(), item.value().dim() >= 2});
    }
    return out;
  }

  nlohmann::json adapter_config(const std::string& base_model_path) const override {
    const auto& o = *options_;
    auto config = common_adapter_config(base_model_path, "LST");
    config.update({
        {"gate_temperature", o.gate_temperature},
        {"init", o.init},
        {"layers", layers_},
        {"reduction_factor", o.reduction_factor},
        {"side_head_dim", side_config_.head_dim},
        {"side_hidden_size", side_config_.hidden_size},
        {"side_intermediate_size", side_config_.intermediate_size},
    });
    return config;
  }

  void merge(Model&) override {
    throw Error("LST cannot be merged into the base weights (its side network runs beside the backbone)");
  }
  bool mergeable() const override { return false; }
  bool backpropagates_through_base() const override { return false; }  // the point of LST: the backbone is only run

  std::optional<BackboneCacheStats> cache_stats() const {
    if (!ladder_ || !ladder_->cache()) return std::nullopt;
    return ladder_->cache()->stats;
  }

 protected:
  std::string tensor_settings() const override { return "reduction_factor and layers"; }

 private:
  static std::vector<int64_t> choose_layers(const std::vector<int64_t>& asked, int64_t num_layers) {
    std::vector<int64_t> layers = asked;
    if (layers.empty()) {
      for (int64_t i = 0; i < num_layers; ++i) layers.push_back(i);
    }
    std::set<int64_t> seen;
    for (int64_t layer : layers) {
      check(layer >= 0 && layer < num_layers, "peft.layers: layer " + std::to_string(layer) +
                                                  " is out of range; the model has " + std::to_string(num_layers) +
                                                  " layers (0 to " + std::to_string(num_layers - 1) + ")");
      check(seen.insert(layer).second, "peft.layers: layer " + std::to_string(layer) + " is listed twice");
    }
    std::sort(layers.begin(), layers.end());
    return layers;
  }

  static void check_reduction_factor(int64_t r, const ModelConfig& c, bool rotary) {
    const std::pair<const char*, int64_t> widths[] = {
        {"hidden_size", c.hidden_size}, {"head_dim", c.head_dim}, {"intermediate_size", c.intermediate_size}};
    for (const auto& [name, width] : widths) {
      check(width % r == 0, "peft.reduction_factor " + std::to_string(r) + " does not divide the model's " + name +
                                " " + std::to_string(width) + " (the side network is 1/r as wide)");
    }
    check(!rotary || (c.head_dim / r) % 2 == 0, "peft.reduction_factor " + std::to_string(r) +
                                                    " leaves a head dim of " + std::to_string(c.head_dim / r) +
                                                    "; rotary embeddings need an even one");
  }

  // HF's _init_weights for the blocks; the Linear layers keep torch's default.
  void initialise_randomly(double initializer_range) {
    torch::NoGradGuard no_grad;
    for (auto& item : side_->stack->named_parameters()) {
      auto& tensor = item.value();
      if (tensor.dim() >= 2) {
        tensor.normal_(0.0, initializer_range);
      } else if (ends_with(item.key(), ".weight")) {  // a norm's scale
        tensor.fill_(1.0);
      } else {
        tensor.zero_();
      }
    }
  }

  std::shared_ptr<const LstOptions> options_;
  std::vector<int64_t> layers_;
  ModelConfig side_config_;
  SideNetwork side_{nullptr};
  std::shared_ptr<Ladder> ladder_;
};

}  // namespace

void LstOptions::read(Section& section) {
  section.get("reduction_factor", reduction_factor);
  if (reduction_factor < 1)
    section.fail("reduction_factor", "must be at least 1, got " + std::to_string(reduction_factor));
  section.get("layers", layers);
  section.get_choice("init", init, {"pruned", "random"});
  if (init == "pruned") {
    section.get("prune_examples", prune_examples);
    if (prune_examples < 1) section.fail("prune_examples", "must be at least 1, got " + std::to_string(prune_examples));
  } else if (section.has("prune_examples")) {
    section.fail("prune_examples", "is only used with init: pruned");
  }
  section.get("cache_backbone", cache_backbone);
}

std::shared_ptr<MethodOptions> LstOptions::from_adapter_config(const nlohmann::json& config) {
  auto options = std::make_shared<LstOptions>();
  options->reduction_factor = positive_integer(config, "reduction_factor");
  check(config.contains("layers") && config["layers"].is_array() && !config["layers"].empty(),
        "adapter_config.json: 'layers' must be a non-empty list of layer indices");
  for (const auto& layer : config["layers"]) {
    check(layer.is_number_integer(), "adapter_config.json: 'layers' must hold integers, got " + layer.dump());
    options->layers.push_back(layer.get<int64_t>());
  }
  if (config.contains("gate_temperature")) {
    const auto& temperature = config["gate_temperature"];
    check(temperature.is_number() && temperature.get<double>() > 0,
          "adapter_config.json: 'gate_temperature' must be a positive number");
    options->gate_temperature = temperature.get<double>();
  }
  // Only recorded: a loaded adapter's tensors replace whatever attach() starts from.
  if (config.contains("init") && config["init"].is_string()) options->init = config["init"].get<std::string>();
  return options;
}

std::unique_ptr<Method> make_lst(std::shared_ptr<const MethodOptions> options) {
  auto lst = std::dynamic_pointer_cast<const LstOptions>(options);
  check(lst != nullptr, "internal: LST built from options of another method");
  return std::make_unique<Lst>(std::move(lst));
}

std::optional<BackboneCacheStats> backbone_cache_stats(const Method& method) {
  const auto* lst = dynamic_cast<const Lst*>(&method);
  return lst ? lst->cache_stats() : std::nullopt;
}

}  // namespace peft
