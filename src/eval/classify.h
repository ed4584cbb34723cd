// Held-out classification, both ways: rank classification with a causal LM (each candidate label's words are
// scored after the example's prompt, and the label with the highest length-normalised log-likelihood, i.e. the
// lowest mean NLL per token, is the prediction), and an encoder's classification head (the arg-max class).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "data/classification.h"
#include "data/dataset.h"
#include "eval/metrics.h"

namespace peft {

class Model;

struct ClassificationReport {
  std::vector<int64_t> predictions;  // label index per example
  ClassificationMetrics metrics;
  std::string majority_label;      // the most frequent true label of the set
  double majority_accuracy = 0.0;  // accuracy of always answering it: the baseline to beat
};

// `candidates` as verbalized_candidates() builds them (num_labels consecutive ones per example).
ClassificationReport rank_classify(Model& model, const ClassificationSet& set, const std::vector<Example>& candidates,
                                   int64_t batch_size, int64_t pad_id, const torch::Device& device);

// A model with a classification head (train/loss.h class_logits()). `inputs` as encoder_examples() builds them (one per
// example of `set`). `mean_loss` (optional) receives the mean cross-entropy of the true classes.
ClassificationReport classify_with_head(Model& model, const ClassificationSet& set, const std::vector<Example>& inputs,
                                        int64_t batch_size, int64_t pad_id, const torch::Device& device,
                                        double* mean_loss = nullptr);

// Metrics and the majority baseline for predictions of `set`.
ClassificationReport classification_report(const ClassificationSet& set, std::vector<int64_t> predictions);

// One line: "accuracy 0.6250 | F1 0.5714 | macro-F1 0.6190 | MCC 0.2582 (872 examples; majority class '1' 0.5092)".
std::string format_report(const ClassificationReport& report);

}  // namespace peft
