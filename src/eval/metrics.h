// Classification metrics over predicted and true label indices: accuracy, F1 of the positive class (label 1:
// MRPC's "equivalent"), macro-F1 (SuperGLUE CB) and Matthews correlation (CoLA), as GLUE and SuperGLUE report
// them (scikit-learn's definitions: a ratio with a zero denominator counts as 0).
#pragma once

#include <cstdint>
#include <vector>

namespace peft {

struct ClassificationMetrics {
  int64_t examples = 0;
  double accuracy = 0.0;
  double f1 = 0.0;        // of label 1 (binary tasks)
  double macro_f1 = 0.0;  // mean F1 over the labels
  double matthews = 0.0;  // multiclass Matthews correlation (Gorodkin's R_K); the usual MCC for two labels
};

// Throws peft::Error when the lists differ in length, are empty, or hold a label outside [0, num_labels).
ClassificationMetrics classification_metrics(const std::vector<int64_t>& predicted, const std::vector<int64_t>& truth,
                                             int64_t num_labels);

}  // namespace peft
