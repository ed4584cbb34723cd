#include "eval/classify.h"

#include <cstdio>

#include "core/error.h"
#include "data/batch.h"
#include "eval/evaluator.h"
#include "models/model.h"
#include "train/loss.h"

namespace peft {

ClassificationReport rank_classify(Model& model, const ClassificationSet& set, const std::vector<Example>& candidates,
                                   int64_t batch_size, int64_t pad_id, const torch::Device& device) {
  size_t labels = set.label_names.size();
  check(candidates.size() == set.examples.size() * labels, "internal: candidates do not match the data set");
  auto result = evaluate(model, candidates, batch_size, pad_id, device);
  std::vector<int64_t> predictions;
  predictions.reserve(set.examples.size());
  for (size_t i = 0; i < set.examples.size(); ++i) {
    size_t best = 0;
    for (size_t k = 1; k < labels; ++k) {
      // Ties go to the earlier label, so that the result does not depend on floating-point noise order.
      if (result.per_example[i * labels + k].loss < result.per_example[i * labels + best].loss) best = k;
    }
    predictions.push_back(static_cast<int64_t>(best));
  }
  return classification_report(set, std::move(predictions));
}

ClassificationReport classify_with_head(Model& model, const ClassificationSet& set, const std::vector<Example>& inputs,
                                        int64_t batch_size, int64_t pad_id, const torch::Device& device,
                                        double* mean_loss) {
  check(inputs.size() == set.examples.size(), "internal: inputs do not match the data set");
  torch::NoGradGuard no_grad;
  bool was_training = model.is_training();
  model.eval();
  std::vector<int64_t> predictions;
  double total_loss = 0.0;
  for (size_t start = 0; start < inputs.size(); start += static_cast<size_t>(batch_size)) {
    std::vector<const Example*> members;
    for (size_t i = start; i < std::min(inputs.size(), start + static_cast<size_t>(batch_size)); ++i) {
      members.push_back(&inputs[i]);
    }
    Batch batch = collate(members, pad_id).to(device);
    auto logits = class_logits(model, batch).to(torch::kFloat);
    total_loss +=
        torch::nn::functional::cross_entropy(logits, batch.class_labels,
                                             torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
            .item<double>();
    auto best = logits.argmax(-1).to(torch::kCPU).contiguous();
    predictions.insert(predictions.end(), best.data_ptr<int64_t>(), best.data_ptr<int64_t>() + best.numel());
  }
  if (was_training) model.train();
  if (mean_loss) *mean_loss = total_loss / static_cast<double>(inputs.size());
  return classification_report(set, std::move(predictions));
}

ClassificationReport classification_report(const ClassificationSet& set, std::vector<int64_t> predictions) {
  ClassificationReport report;
  std::vector<int64_t> truth, counts(set.label_names.size(), 0);
  for (const auto& example : set.examples) {
    truth.push_back(example.label);
    ++counts[static_cast<size_t>(example.label)];
  }
  report.metrics = classification_metrics(predictions, truth, static_cast<int64_t>(set.label_names.size()));
  size_t majority = static_cast<size_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  report.majority_label = set.label_names[majority];
  report.majority_accuracy = static_cast<double>(counts[majority]) / static_cast<double>(truth.size());
  report.predictions = std::move(predictions);
  return report;
}

std::string format_report(const ClassificationReport& report) {
  const auto& m = report.metrics;
  char line[256];
  std::snprintf(line, sizeof(line),
                "accuracy %.4f | F1 %.4f | macro-F1 %.4f | MCC %.4f (%ld examples; majority class '%s' %.4f)",
                m.accuracy, m.f1, m.macro_f1, m.matthews, long(m.examples), report.majority_label.c_str(),
                report.majority_accuracy);
  return line;
}

}  // namespace peft
