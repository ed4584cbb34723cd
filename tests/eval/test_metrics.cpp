// Classification metrics against hand-computed values and scikit-learn's documented examples.
#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/metrics.h"

namespace peft {
namespace {

TEST(Metrics, BinaryAccuracyF1AndMatthews) {
  // TP 2, FN 1, TN 2, FP 1.
  auto m = classification_metrics({1, 1, 0, 0, 0, 1}, {1, 1, 1, 0, 0, 0}, 2);
  EXPECT_EQ(m.examples, 6);
  EXPECT_DOUBLE_EQ(m.accuracy, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(m.f1, 2.0 * 2.0 / (3.0 + 3.0));
  EXPECT_DOUBLE_EQ(m.macro_f1, 2.0 / 3.0);
  EXPECT_NEAR(m.matthews, (2.0 * 2.0 - 1.0 * 1.0) / 9.0, 1e-12);
  // scikit-learn's matthews_corrcoef example: [+1, +1, +1, -1] vs predictions [+1, -1, +1, +1] gives -0.33...
  EXPECT_NEAR(classification_metrics({1, 0, 1, 1}, {1, 1, 1, 0}, 2).matthews, -1.0 / 3.0, 1e-12);
}

TEST(Metrics, DegenerateCasesCountAsZero) {
  // One class predicted for everything: MCC and the positive F1 are 0, not NaN.
  auto m = classification_metrics({0, 0, 0, 0}, {1, 0, 1, 0}, 2);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(m.f1, 0.0);
  EXPECT_DOUBLE_EQ(m.matthews, 0.0);
}

TEST(Metrics, MulticlassMatthewsAndMacroF1) {
  // Three classes, two examples each, half right: R_K = (3·6 − 12) / (36 − 12) = 0.25.
  auto m = classification_metrics({0, 1, 1, 2, 2, 0}, {0, 0, 1, 1, 2, 2}, 3);
  EXPECT_DOUBLE_EQ(m.accuracy, 0.5);
  EXPECT_NEAR(m.matthews, 0.25, 1e-12);
  EXPECT_NEAR(m.macro_f1, 0.5, 1e-12);  // each class: precision 1/2, recall 1/2
}

TEST(Metrics, BadInputIsAnError) {
  EXPECT_THROW(classification_metrics({0}, {0, 1}, 2), Error);
  EXPECT_THROW(classification_metrics({}, {}, 2), Error);
  EXPECT_THROW(classification_metrics({2}, {0}, 2), Error);
}

}  // namespace
}  // namespace peft
