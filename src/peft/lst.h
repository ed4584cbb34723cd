// Ladder Side-Tuning (Sung, Cho & Bansal 2022, "LST: Ladder Side-Tuning for Parameter and Memory Efficient
// Transfer Learning"), decoder-only variant. The frozen backbone runs without autograd; every trainable
// parameter sits in a side network of the backbone's own block type at width d' = d/r (same head count, head dim
// d_h/r, feed-forward f/r), fed through gated ladders from the chosen backbone layers:
//   s = Down₀(E(x));  for side layer k reading backbone layer i = layers[k]:
//   μ_k = σ(α_k / T), s ← μ_k·s + (1 − μ_k)·Down_{k+1}(b_i), s ← SideBlock_k(s);
//   hidden = Up(SideNorm(s)) into the frozen LM head.
// T = 0.1 and α = 0 at init (μ = ½). Down (d → d') and Up (d' → d) are linear with bias.
//
// init: pruned (the paper's) starts the side blocks and norm as the backbone pruned by Fisher importance
// (peft/lst_pruning.h) over `prune_examples` training examples, and Down/Up as the selection of the kept hidden
// dims (Downᵢ picks them, Up puts them back), so the side network begins as the pruned backbone reading the
// coordinates it was pruned to. init: random uses HF's initialiser (N(0, initializer_range), norms 1) for the
// blocks and torch's Linear init for Down/Up.
//
// cache_backbone: true keeps each training sequence's backbone states (embeddings and the ladder layers'
// outputs) the first time it is seen and reuses them whenever it comes back, so later epochs run only the side
// network. The cache holds (|layers| + 1) × d values of the model dtype per training token.
//
// Saved with peft_type LST: the side network's parameters under base_model.model.side_network.* and
// adapter_config.json {reduction_factor, layers, gate_temperature, ...} (docs/ADAPTER_FORMATS.md).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/section.h"
#include "peft/method.h"

namespace peft {

struct LstOptions : MethodOptions {
  int64_t reduction_factor = 8;
  std::vector<int64_t> layers;  // backbone layers that get a side layer; empty = all
  std::string init = "pruned";  // pruned | random
  int64_t prune_examples = 1024;
  bool cache_backbone = false;
  double gate_temperature = 0.1;  // T: fixed by the paper, recorded in the adapter

  void read(Section& section) override;
  static std::shared_ptr<MethodOptions> from_adapter_config(const nlohmann::json& config);
};

std::unique_ptr<Method> make_lst(std::shared_ptr<const MethodOptions> options);

// Counters of the backbone cache (for tests and the log).
struct BackboneCacheStats {
  int64_t sequences = 0;  // cached
  int64_t bytes = 0;
  int64_t hits = 0;    // batches served from the cache
  int64_t misses = 0;  // batches that ran the backbone
};
// The stats of `method` when it is LST with cache_backbone, else nullopt.
std::optional<BackboneCacheStats> backbone_cache_stats(const Method& method);

}  // namespace peft
