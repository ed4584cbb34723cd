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
};

// Returns only the new tokens (without the prompt); stops after EOS (included) or max_new_tokens.
std::vector<int64_t> generate(CausalLM& model, const std::vector<int64_t>& prompt, const GenerationOptions& options);

}  // namespace peft
