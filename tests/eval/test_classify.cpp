// Rank classification: the prediction is the label whose words have the lowest mean NLL after the prompt,
// checked against the same quantity computed directly from the model's logits one candidate at a time.
#include <gtest/gtest.h>

#include "data/verbalizer.h"
#include "eval/classify.h"
#include "io/tokenizer.h"
#include "models/loader.h"
#include "test_util.h"

namespace peft {
namespace {

// Mean NLL of the scored tokens of one example, straight from the logits.
double mean_nll(CausalLM& model, const Example& example) {
  torch::NoGradGuard no_grad;
  auto ids = torch::tensor(example.input_ids).unsqueeze(0);
  auto log_probs = torch::log_softmax(model.logits(ids, torch::ones_like(ids)).to(torch::kDouble), -1)[0];
  double sum = 0;
  int64_t count = 0;
  for (size_t t = 1; t < example.labels.size(); ++t) {
    if (example.labels[t] == kIgnoreIndex) continue;
    sum -= log_probs[static_cast<int64_t>(t) - 1][example.labels[t]].item<double>();
    ++count;
  }
  return sum / static_cast<double>(count);
}

TEST(RankClassification, PicksTheLowestMeanNllPerLabel) {
  std::string dir = test::source_dir() + "/third_party/stories260K-hf";
  auto model = load_model(dir, {"float32", "cpu"});
  model->eval();
  auto tokenizer = load_tokenizer(dir, 1, 2);
  ClassificationSet set;
  set.format = "jsonl";
  set.label_names = {"sad", "happy", "angry"};
  set.examples = {{"Lily lost her toy and cried", "", 0},
                  {"Tom got a big red ball", "", 1},
                  {"The dog ate the cake", "", 2},
                  {"Mom hugged Ben", "", 1},
                  {"The sun was warm and", "", 1}};
  // Label words of different lengths: the mean, not the sum, decides.
  Verbalizer verbalizer{"{text}. She felt", {" sad", " very happy", " angry and upset"}};
  auto candidates = verbalized_candidates(set, verbalizer, *tokenizer, 64);
  auto report = rank_classify(*model, set, candidates, /*batch_size=*/4, tokenizer->pad_id(), torch::kCPU);
  ASSERT_EQ(report.predictions.size(), set.examples.size());
  std::vector<int64_t> truth;
  for (size_t i = 0; i < set.examples.size(); ++i) {
    std::vector<double> scores;
    for (size_t k = 0; k < 3; ++k) scores.push_back(mean_nll(*model, candidates[i * 3 + k]));
    int64_t expected = std::min_element(scores.begin(), scores.end()) - scores.begin();
    EXPECT_EQ(report.predictions[i], expected) << "example " << i;
    truth.push_back(set.examples[i].label);
  }
  EXPECT_EQ(report.majority_label, "happy");
  EXPECT_DOUBLE_EQ(report.majority_accuracy, 0.6);
  EXPECT_EQ(report.metrics.examples, 5);
  EXPECT_EQ(classification_report(set, truth).metrics.accuracy, 1.0);
}

}  // namespace
}  // namespace peft
