#include "eval/evaluator.h"

#include <cmath>

#include "data/batch.h"
#include "models/model.h"
#include "train/loss.h"

namespace peft {

EvalResult evaluate(Model& model, const std::vector<Example>& examples, int64_t batch_size, int64_t pad_id,
                    const torch::Device& device) {
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  EvalResult result;
  result.examples = static_cast<int64_t>(examples.size());
  double total_nll = 0.0;
  for (size_t start = 0; start < examples.size(); start += static_cast<size_t>(batch_size)) {
    std::vector<const Example*> members;
    for (size_t i = start; i < std::min(examples.size(), start + static_cast<size_t>(batch_size)); ++i) {
      members.push_back(&examples[i]);
    }
    Batch batch = collate(members, pad_id).to(device);
    auto nll = scored_token_nll(model, batch);
    // Sum and count per example of this batch.
    auto row = scored_positions(batch.labels).row;
    auto sums = torch::zeros({static_cast<int64_t>(members.size())}, nll.options()).index_add_(0, row, nll);
    auto counts =
        torch::zeros({static_cast<int64_t>(members.size())}, nll.options()).index_add_(0, row, torch::ones_like(nll));
    sums = sums.to(torch::kCPU, torch::kDouble);
    counts = counts.to(torch::kCPU, torch::kDouble);
    for (size_t i = 0; i < members.size(); ++i) {
      double sum = sums[static_cast<int64_t>(i)].item<double>();
      int64_t count = static_cast<int64_t>(counts[static_cast<int64_t>(i)].item<double>());
      total_nll += sum;
      result.tokens += count;
      result.per_example.push_back({static_cast<int64_t>(start + i), count, count ? sum / count : 0.0});
    }
  }
  if (was_training) model.train();
  result.loss = result.tokens ? total_nll / static_cast<double>(result.tokens) : 0.0;
  result.perplexity = std::exp(result.loss);
  return result;
}

}  // namespace peft
