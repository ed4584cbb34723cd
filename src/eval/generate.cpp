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

std::vector<std::vector<int64_t>> generate_batch(CausalLM& model, const std::vector<std::vector<int64_t>>& prompts,
                                                 const GenerationOptions& options) {
  for (const auto& prompt : prompts) check(!prompt.empty(), "generation needs at least one prompt token");
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  auto device = model.parameters().front().device();
  auto generator = torch::make_generator<at::CPUGeneratorImpl>(options.seed);
  std::vector<std::vector<int64_t>> sequences = prompts, generated(prompts.size());
  std::vector<bool> done(prompts.size(), false);
  int64_t limit = model.max_sequence_length();  // virtual tokens take positions too
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    std::vector<size_t> active;
    for (size_t i = 0; i < sequences.size(); ++i) {
      if (!done[i] && static_cast<int64_t>(sequences[i].size()) < limit) active.push_back(i);
    }
    if (active.empty()) break;
    // The whole sequence is re-run each step (no key/value cache): simple, and exact by construction.
    int64_t longest = 0;
    for (size_t i : active) longest = std::max<int64_t>(longest, static_cast<int64_t>(sequences[i].size()));
    auto ids = torch::zeros({static_cast<int64_t>(active.size()), longest}, torch::kLong);
    auto mask = torch::zeros_like(ids);
    for (size_t row = 0; row < active.size(); ++row) {
      const auto& sequence = sequences[active[row]];
      auto length = static_cast<int64_t>(sequence.size());
      ids[static_cast<int64_t>(row)].narrow(0, 0, length).copy_(torch::tensor(sequence, torch::kLong));
      mask[static_cast<int64_t>(row)].narrow(0, 0, length).fill_(1);
    }
    auto hidden = model.hidden_states(ids.to(device), mask.to(device));  // (B, T, d)
    // One head product for the batch, over each row's last real position only.
    auto last = (mask.sum(1) - 1).to(device);
    auto rows = torch::arange(static_cast<int64_t>(active.size()), torch::dtype(torch::kLong).device(device));
    auto logits = model.head_logits(hidden.index({rows, last})).to(torch::kCPU, torch::kFloat);  // (B, V)
    for (size_t row = 0; row < active.size(); ++row) {
      size_t i = active[row];
      int64_t next = choose(logits[static_cast<int64_t>(row)], options, generator);
      sequences[i].push_back(next);
      generated[i].push_back(next);
      if (next == options.eos_id) done[i] = true;
    }
  }
  if (was_training) model.train();
  return generated;
}

std::vector<int64_t> generate(CausalLM& model, const std::vector<int64_t>& prompt, const GenerationOptions& options) {
  return generate_batch(model, {prompt}, options).front();
}

}  // namespace peft
