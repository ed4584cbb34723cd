#include "eval/generate.h"

#include "core/error.h"
#include "models/causal_lm.h"

namespace peft {
namespace {

// Index of the next token from float32 logits (V).
int64_t choose(torch::Tensor logits, const GenerationOptions& options, torch::Generator& generator) {
  if (options.temperature <= 0.0) return logits.argmax().item<int64_t>();
  logits = logits / options.temperature;
  if (options.top_k > 0 && options.top_k < logits.size(0)) {
    auto threshold = std::get<0>(logits.topk(options.top_k)).min();
    logits = logits.masked_fill(logits < threshold, -std::numeric_limits<float>::infinity());
  }
  auto probabilities = torch::softmax(logits, -1);
  if (options.top_p < 1.0) {
    // Keep the smallest set of most likely tokens whose mass reaches top_p (the top token always stays).
    auto [sorted, order] = probabilities.sort(/*dim=*/-1, /*descending=*/true);
    auto mass_before = sorted.cumsum(-1) - sorted;
    sorted.masked_fill_(mass_before >= options.top_p, 0.0);
    probabilities = torch::zeros_like(probabilities).scatter_(0, order, sorted);
  }
  return torch::multinomial(probabilities, 1, /*replacement=*/false, generator).item<int64_t>();
}

}  // namespace

std::vector<int64_t> generate(CausalLM& model, const std::vector<int64_t>& prompt, const GenerationOptions& options) {
  check(!prompt.empty(), "generation needs at least one prompt token");
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  auto device = model.parameters().front().device();
  auto generator = torch::make_generator<at::CPUGeneratorImpl>(options.seed);
  std::vector<int64_t> sequence = prompt;
  std::vector<int64_t> generated;
  int64_t limit = model.config().max_position_embeddings;
  for (int64_t step = 0; step < options.max_new_tokens && static_cast<int64_t>(sequence.size()) < limit; ++step) {
    // The whole sequence is re-run each step (no key/value cache): simple, and exact by construction.
    auto ids = torch::tensor(sequence, torch::kLong).unsqueeze(0).to(device);
    auto mask = torch::ones_like(ids);
    auto hidden = model.hidden_states(ids, mask);
    auto last = hidden.select(1, hidden.size(1) - 1);  // (1, d)
    auto logits = model.head()->forward(last).squeeze(0).to(torch::kCPU, torch::kFloat);
    int64_t next = choose(logits, options, generator);
    sequence.push_back(next);
    generated.push_back(next);
    if (next == options.eos_id) break;
  }
  if (was_training) model.train();
  return generated;
}

}  // namespace peft
