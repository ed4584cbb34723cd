#include "eval/metrics.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace peft {

ClassificationMetrics classification_metrics(const std::vector<int64_t>& predicted, const std::vector<int64_t>& truth,
                                             int64_t num_labels) {
  check(predicted.size() == truth.size(), "metrics: " + std::to_string(predicted.size()) + " predictions for " +
                                              std::to_string(truth.size()) + " labels");
  check(!truth.empty(), "metrics: no examples");
  size_t k = static_cast<size_t>(num_labels);
  std::vector<std::vector<double>> confusion(k, std::vector<double>(k, 0.0));  // [truth][predicted]
  for (size_t i = 0; i < truth.size(); ++i) {
    check(truth[i] >= 0 && truth[i] < num_labels && predicted[i] >= 0 && predicted[i] < num_labels,
          "metrics: label outside [0, " + std::to_string(num_labels) + ") at example " + std::to_string(i));
    confusion[static_cast<size_t>(truth[i])][static_cast<size_t>(predicted[i])] += 1.0;
  }
  double n = static_cast<double>(truth.size()), correct = 0.0;
  std::vector<double> true_count(k, 0.0), predicted_count(k, 0.0);
  for (size_t t = 0; t < k; ++t) {
    correct += confusion[t][t];
    for (size_t p = 0; p < k; ++p) {
      true_count[t] += confusion[t][p];
      predicted_count[p] += confusion[t][p];
    }
  }
  auto f1_of = [&](size_t label) {
    double denominator = true_count[label] + predicted_count[label];
    return denominator > 0 ? 2.0 * confusion[label][label] / denominator : 0.0;
  };
  ClassificationMetrics metrics;
  metrics.examples = static_cast<int64_t>(truth.size());
  metrics.accuracy = correct / n;
  if (k >= 2) metrics.f1 = f1_of(1);
  for (size_t label = 0; label < k; ++label) metrics.macro_f1 += f1_of(label) / static_cast<double>(k);
  // R_K = (c·n − Σ p_k t_k) / sqrt((n² − Σ p_k²)(n² − Σ t_k²)).
  double cross = 0.0, predicted_squares = 0.0, true_squares = 0.0;
  for (size_t label = 0; label < k; ++label) {
    cross += predicted_count[label] * true_count[label];
    predicted_squares += predicted_count[label] * predicted_count[label];
    true_squares += true_count[label] * true_count[label];
  }
  double denominator = std::sqrt((n * n - predicted_squares) * (n * n - true_squares));
  metrics.matthews = denominator > 0 ? (correct * n - cross) / denominator : 0.0;
  return metrics;
}

}  // namespace peft
