// Autoregressive generation: greedy by default, or sampling with temperature and nucleus (top-p) / top-k
// filtering from a seeded generator.
#pragma once

#include <cstdint>
#include <vector>

namespace peft {

class CausalLM;

struct GenerationOptions {
  int64_t max_new_tokens = 64;
  double temperature = 0.0;  // 0 = greedy
  double top_p = 1.0;
  int64_t top_k = 0;  // 0 = no top-k filter
  uint64_t seed = 0;
  int64_t eos_id = 2;
  // Keep each position's keys and values between steps (models/kv_cache.h) where the model can: the prompt runs
  // once, then one position per new token. Off re-runs the whole sequence every step (the reference the cached
  // path is tested against); models without a cache (TorchScript, Ladder Side-Tuning) always do.
  bool kv_cache = true;
};

// Returns only the new tokens (without the prompt); stops after EOS (included) or max_new_tokens.
std::vector<int64_t> generate(CausalLM& model, const std::vector<int64_t>& prompt, const GenerationOptions& options);

// Several prompts at once, right-padded into one batch (a finished row leaves it): each row's tokens are those
// generate() gives for it alone (padding is masked and causal attention never looks right). Sampling draws from one
// generator in row order, so only greedy results are independent of the batch's composition.
std::vector<std::vector<int64_t>> generate_batch(CausalLM& model, const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerationOptions& options);

}  // namespace peft
