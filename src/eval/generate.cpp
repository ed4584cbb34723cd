#include "eval/generate.h"

#include <algorithm>
#include <limits>

#include "core/error.h"
#include "models/causal_lm.h"
#include "models/kv_cache.h"

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

// Right-padded rows (B, T) and their mask, on `device`.
struct PaddedRows {
  torch::Tensor ids, mask;
};
PaddedRows pad_rows(const std::vector<const std::vector<int64_t>*>& rows, const torch::Device& device) {
  int64_t longest = 0;
  for (const auto* row : rows) longest = std::max<int64_t>(longest, static_cast<int64_t>(row->size()));
  auto ids = torch::zeros({static_cast<int64_t>(rows.size()), longest}, torch::kLong);
  auto mask = torch::zeros_like(ids);
  for (size_t r = 0; r < rows.size(); ++r) {
    auto length = static_cast<int64_t>(rows[r]->size());
    ids[static_cast<int64_t>(r)].narrow(0, 0, length).copy_(torch::tensor(*rows[r], torch::kLong));
    mask[static_cast<int64_t>(r)].narrow(0, 0, length).fill_(1);
  }
  return {ids.to(device), mask.to(device)};
}

// The rows still generating and what they have produced; both paths share how a row finishes.
struct Rows {
  std::vector<std::vector<int64_t>> sequences, generated;
  std::vector<size_t> active;  // indices of unfinished rows, in order
  int64_t limit;               // the longest a sequence may grow (virtual tokens take positions too)

  Rows(const std::vector<std::vector<int64_t>>& prompts, int64_t limit_)
      : sequences(prompts), generated(prompts.size()), limit(limit_) {
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (static_cast<int64_t>(prompts[i].size()) < limit) active.push_back(i);
    }
  }
  std::vector<const std::vector<int64_t>*> active_sequences() const {
    std::vector<const std::vector<int64_t>*> rows;
    for (size_t i : active) rows.push_back(&sequences[i]);
    return rows;
  }
  // Chooses each active row's next token from logits (A, V) in row order; returns the positions in `active` of
  // the rows that go on, and drops the others.
  std::vector<int64_t> advance(const torch::Tensor& logits, const GenerationOptions& options,
                               torch::Generator& generator) {
    auto host = logits.to(torch::kCPU, torch::kFloat);
    std::vector<size_t> still;
    std::vector<int64_t> kept;
    for (size_t row = 0; row < active.size(); ++row) {
      size_t i = active[row];
      int64_t next = choose(host[static_cast<int64_t>(row)], options, generator);
      sequences[i].push_back(next);
      generated[i].push_back(next);
      if (next != options.eos_id && static_cast<int64_t>(sequences[i].size()) < limit) {
        still.push_back(i);
        kept.push_back(static_cast<int64_t>(row));
      }
    }
    active = std::move(still);
    return kept;
  }
};

// The reference path: every step re-runs each active row's whole sequence (exact by construction).
void generate_uncached(CausalLM& model, Rows& rows, const GenerationOptions& options, torch::Generator& generator,
                       const torch::Device& device) {
  for (int64_t step = 0; step < options.max_new_tokens && !rows.active.empty(); ++step) {
    auto batch = pad_rows(rows.active_sequences(), device);
    auto hidden = model.hidden_states(batch.ids, batch.mask);  // (B, T, d)
    // One head product for the batch, over each row's last real position only.
    auto last = batch.mask.sum(1) - 1;
    auto index = torch::arange(hidden.size(0), last.options());
    rows.advance(model.head_logits(hidden.index({index, last})), options, generator);
  }
}

// The prompts run once (the prefill), then each step feeds every active row its last token alone.
void generate_cached(CausalLM& model, Rows& rows, const GenerationOptions& options, torch::Generator& generator,
                     const torch::Device& device) {
  if (rows.active.empty() || options.max_new_tokens <= 0) return;
  int64_t longest = 0;
  for (const auto* row : rows.active_sequences())
    longest = std::max<int64_t>(longest, static_cast<int64_t>(row->size()));
  KvCache cache(model.virtual_tokens() + model.prefix_positions() + longest + options.max_new_tokens);
  auto batch = pad_rows(rows.active_sequences(), device);
  auto hidden = model.decode(batch.ids, batch.mask, cache);
  auto last = batch.mask.sum(1) - 1;
  auto index = torch::arange(hidden.size(0), last.options());
  auto logits = model.head_logits(hidden.index({index, last}));
  for (int64_t step = 1;; ++step) {
    size_t before = rows.active.size();
    auto kept = rows.advance(logits, options, generator);
    if (rows.active.empty() || step >= options.max_new_tokens) break;
    if (kept.size() < before) cache.keep_rows(torch::tensor(kept, torch::kLong).to(device));
    std::vector<int64_t> tokens;
    for (size_t i : rows.active) tokens.push_back(rows.sequences[i].back());
    auto ids = torch::tensor(tokens, torch::kLong).view({-1, 1}).to(device);
    logits = model.head_logits(model.decode(ids, torch::ones_like(ids), cache).select(1, 0));
  }
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
  Rows rows(prompts, model.max_sequence_length());
  if (options.kv_cache && model.supports_kv_cache()) {
    generate_cached(model, rows, options, generator, device);
  } else {
    generate_uncached(model, rows, options, generator, device);
  }
  if (was_training) model.train();
  return rows.generated;
}

std::vector<int64_t> generate(CausalLM& model, const std::vector<int64_t>& prompt, const GenerationOptions& options) {
  return generate_batch(model, {prompt}, options).front();
}

}  // namespace peft
