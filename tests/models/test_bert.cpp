// BERT and RoBERTa sequence classifiers: logits against the independent reference
// (scripts/reference/make_encoder_fixtures.py), a head created for a checkpoint without one, and the errors.
#include <gtest/gtest.h>

#include <filesystem>

#include "io/safetensors.h"
#include "models/export.h"
#include "models/loader.h"
#include "test_util.h"

namespace peft {
namespace {

struct Expected {
  torch::Tensor input_ids, attention_mask, token_type_ids, logits;
};

Expected read_expected(const std::string& path) {
  auto file = safetensors::File::open(path);
  return {file->tensor("input_ids").clone(), file->tensor("attention_mask").clone(),
          file->tensor("token_type_ids").clone(), file->tensor("logits").clone()};
}

torch::Tensor classify(SequenceClassifier& model, const Expected& e) {
  torch::NoGradGuard no_grad;
  model.eval();
  return model.classify(e.input_ids, e.attention_mask, e.token_type_ids);
}

double relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  return (actual - expected).abs().max().item<double>() / std::max(1.0, expected.abs().max().item<double>());
}

std::shared_ptr<SequenceClassifier> load_classifier(const std::string& dir, int64_t labels) {
  return std::dynamic_pointer_cast<SequenceClassifier>(load_transformer(dir, {"float32", "cpu", labels}));
}

class EncoderParity : public testing::TestWithParam<std::string> {};

// Three rows: full, right-padded, and a pair with token types 0/1 (RoBERTa: one type); RoBERTa's positions
// count from padding_idx + 1.
TEST_P(EncoderParity, MatchesReferenceLogits) {
  std::string dir = test::fixture("encoders/" + GetParam());
  auto model = load_classifier(dir, 0);  // 3 labels from config.json's id2label
  ASSERT_TRUE(model);
  EXPECT_EQ(model->num_labels(), 3);
  EXPECT_TRUE(model->created_modules.empty());
  auto expected = read_expected(dir + "/expected.safetensors");
  EXPECT_LT(relative_error(classify(*model, expected), expected.logits), 2e-5) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EncoderParity, testing::Values("bert_tiny", "roberta_tiny"));

// The shared random BERT is a BertLMHeadModel: no pooler, no classifier. Both are created (and the pooler
// recorded, to be trained and saved); with the reference's seeded head copied in, the logits match.
TEST(EncoderParity, SharedBertTiniestWithCreatedHead) {
  auto shared = test::shared_data_dir();
  if (!shared) GTEST_SKIP() << "../shared/data not present";
  auto model = load_classifier(*shared + "/bert-tiniest-random-hf", 2);
  ASSERT_TRUE(model);
  EXPECT_EQ(model->created_modules, (std::vector<std::string>{"bert.pooler.dense"}));
  auto head = safetensors::File::open(test::fixture("encoders/bert_tiniest_head.safetensors"));
  {
    torch::NoGradGuard no_grad;
    auto parameters = model->named_parameters();
    for (const auto& name : head->names()) parameters[name].copy_(head->tensor(name));
  }
  auto expected = read_expected(test::fixture("encoders/bert_tiniest_expected.safetensors"));
  EXPECT_LT(relative_error(classify(*model, expected), expected.logits), 2e-5);
}

// Full fine-tuning's output: a <Family>ForSequenceClassification directory with the head and its labels, which
// loads back computing what the trained model computed.
TEST(EncoderModel, ExportedClassifierReloads) {
  for (const char* name : {"bert_tiny", "roberta_tiny"}) {
    std::string base = test::fixture(std::string("encoders/") + name);
    auto model = load_classifier(base, 3);
    {
      torch::NoGradGuard no_grad;
      for (auto& parameter : model->parameters()) parameter.add_(torch::randn_like(parameter) * 0.01);
    }
    auto expected = read_expected(base + "/expected.safetensors");
    auto before = classify(*model, expected);
    std::string out = test::temp_dir(std::string("export-") + name);
    save_model_directory(*model, base, out, torch::kFloat);
    auto config = nlohmann::json::parse(test::read_text(out + "/config.json"));
    EXPECT_EQ(config["architectures"][0],
              std::string(name) == "bert_tiny" ? "BertForSequenceClassification" : "RobertaForSequenceClassification");
    EXPECT_EQ(config["id2label"].size(), 3u);
    auto reloaded = load_classifier(out, 0);
    EXPECT_TRUE(torch::allclose(classify(*reloaded, expected), before, 1e-6, 1e-6)) << name;
  }
}

TEST(EncoderModel, ErrorsAreOneLine) {
  std::string dir = test::fixture("encoders/bert_tiny");
  EXPECT_NE(test::error_of([&] {
              load_model(dir, {"float32", "cpu"});
            }).find("an encoder: it classifies"),
            std::string::npos);
  // The checkpoint's head has 3 labels.
  EXPECT_NE(test::error_of([&] {
              load_transformer(dir, {"float32", "cpu", 2});
            })
                .find("tensor 'classifier.weight' has shape [3, 16] but the data's 2 labels imply [2, 16] (set "
                      "model.new_head: true to start a new head)"),
            std::string::npos);
  EXPECT_EQ(test::error_of([&] { load_transformer(dir, {"float32", "cpu", 2, /*new_head=*/true}); }), "(no error)");
  std::string edited = test::temp_dir("bert-relative");
  auto config = nlohmann::json::parse(test::read_text(dir + "/config.json"));
  config["position_embedding_type"] = "relative_key";
  test::write_text(edited + "/config.json", config.dump());
  EXPECT_NE(test::error_of([&] { load_model_config(edited); }).find("position_embedding_type 'relative_key'"),
            std::string::npos);
  config["position_embedding_type"] = "absolute";
  config.erase("id2label");
  config.erase("label2id");
  test::write_text(edited + "/config.json", config.dump());
  std::filesystem::copy_file(dir + "/model.safetensors", edited + "/model.safetensors");
  EXPECT_NE(test::error_of([&] {
              load_transformer(edited, {"float32", "cpu", 0});
            }).find("does not say how many labels"),
            std::string::npos);
}

}  // namespace
}  // namespace peft
