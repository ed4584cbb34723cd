// Prompt tuning and prefix tuning, the methods that touch the sequence: positions, masks and padding
// (a padded row gives what it gives alone, batched greedy generation equals one-by-one), their counts,
// gradients, saved formats, initialisations and errors. Numerical parity with the independent reference is in
// tests/models/test_llama_parity.cpp.
#include <gtest/gtest.h>

#include <set>

#include "data/batch.h"
#include "eval/generate.h"
#include "io/tokenizer.h"
#include "method_testing.h"
#include "peft/adapter_io.h"
#include "peft/composition.h"
#include "peft/prefix_tuning.h"
#include "peft/prompt_tuning.h"
#include "train/loss.h"

namespace peft {
namespace {

using test::error_of;
using test::fixture_model;
using test::logits;
using test::sample_ids;

std::shared_ptr<PromptTuningOptions> prompt_options(int64_t l = 6) {
  auto options = std::make_shared<PromptTuningOptions>();
  options->num_virtual_tokens = l;
  return options;
}

std::shared_ptr<PrefixTuningOptions> prefix_options(int64_t l = 5, bool mlp = false, int64_t k = 0) {
  auto options = std::make_shared<PrefixTuningOptions>();
  options->num_virtual_tokens = l;
  options->prefix_projection = mlp;
  options->encoder_hidden_size = k;
  return options;
}

std::vector<std::unique_ptr<Method>> every_kind() {
  std::vector<std::unique_ptr<Method>> out;
  out.push_back(make_prompt_tuning(prompt_options()));
  out.push_back(make_prefix_tuning(prefix_options()));
  out.push_back(make_prefix_tuning(prefix_options(5, true, 16)));
  return out;
}

TEST(PromptLearning, TrainableCountsMatchFormulas) {
  auto model = fixture_model("llama_gqa_tied");
  const auto& c = model->config();
  auto count = [](const Method& method) {
    int64_t n = 0;
    for (const auto& parameter : method.trainable_parameters()) n += parameter.tensor.numel();
    return n;
  };
  auto prompt = make_prompt_tuning(prompt_options(6));
  prompt->attach(*model);
  EXPECT_EQ(count(*prompt), 6 * c.hidden_size);  // l·d
  int64_t d_kv = c.num_key_value_heads * c.head_dim, L = c.num_hidden_layers;
  auto plain = fixture_model("llama_gqa_tied");
  auto prefix = make_prefix_tuning(prefix_options(5));
  prefix->attach(*plain);
  EXPECT_EQ(count(*prefix), 5 * 2 * L * d_kv);  // l·2·L·d_kv (n_kv heads under GQA)
  auto with_mlp = fixture_model("llama_gqa_tied");
  auto reparameterised = make_prefix_tuning(prefix_options(5, true, 16));
  reparameterised->attach(*with_mlp);
  // E (l, d) + W1 (k, d) + b1 (k) + W2 (2·L·d_kv, k) + b2 (2·L·d_kv): what the optimiser must hold.
  int64_t width = 2 * L * d_kv, d = c.hidden_size;
  EXPECT_EQ(count(*reparameterised), 5 * d + 16 * d + 16 + width * 16 + width);
  EXPECT_EQ(reparameterised->adapter_tensors().at("prompt_embeddings").sizes(), (std::vector<int64_t>{5, width}));
}

TEST(PromptLearning, SavedAdaptersReloadBitExactlyInHfFormat) {
  for (auto& method : every_kind()) {
    auto model = fixture_model("llama_gqa_tied");
    method->attach(*model);
    {
      torch::NoGradGuard no_grad;
      for (auto& parameter : method->trainable_parameters())
        parameter.tensor.add_(torch::randn_like(parameter.tensor) * 0.1);
    }
    auto before = logits(*model);
    std::string dir = test::temp_dir("prompt-learning-save");
    save_adapter(dir, *method, "llama_gqa_tied");
    auto config = nlohmann::json::parse(test::read_text(dir + "/adapter_config.json"));
    EXPECT_EQ(config["peft_type"], method->name() == "prompt_tuning" ? "PROMPT_TUNING" : "PREFIX_TUNING");
    EXPECT_EQ(config["num_transformer_submodules"], 1);
    EXPECT_EQ(config["task_type"], "CAUSAL_LM");
    auto saved = method->adapter_tensors();
    ASSERT_EQ(saved.size(), 1u);  // prompt_embeddings only: a prefix MLP is collapsed, not saved

    auto reloaded_model = fixture_model("llama_gqa_tied");
    auto reloaded = load_adapter(dir, *reloaded_model);
    EXPECT_TRUE(torch::equal(saved.at("prompt_embeddings"), reloaded->adapter_tensors().at("prompt_embeddings")));
    // With the MLP: the logits through it equal those from the collapsed table.
    EXPECT_TRUE(torch::allclose(before, logits(*reloaded_model), 1e-5, 1e-5))
        << method->name() << " " << (before - logits(*reloaded_model)).abs().max().item<double>();
  }
}

TEST(PromptLearning, AdapterForAnotherModelIsRefused) {
  for (auto& method : every_kind()) {
    auto model = fixture_model("llama_gqa_tied");
    method->attach(*model);
    std::string dir = test::temp_dir("prompt-learning-other");
    save_adapter(dir, *method, "llama_gqa_tied");
    // stories260K: hidden size 64 and 5 layers where the fixture has 24 and 2.
    auto other = load_model(test::source_dir() + "/third_party/stories260K-hf", {"float32", "cpu"});
    std::string message = error_of([&] { load_adapter(dir, *other); });
    EXPECT_NE(message.find("was it trained for another base model?"), std::string::npos) << message;
  }
}

TEST(PromptLearning, PromptInitialisations) {
  auto model = fixture_model("llama_gqa_tied");
  auto random = make_prompt_tuning(prompt_options(6));
  random->attach(*model);
  auto table = random->adapter_tensors().at("prompt_embeddings");
  EXPECT_LE(table.abs().max().item<float>(), 0.5f);
  EXPECT_GT(table.std().item<float>(), 0.2f);  // uniform ±0.5: std 0.29

  auto vocabulary = model->input_embeddings();
  auto sampled_model = fixture_model("llama_gqa_tied");
  auto sample = prompt_options(6);
  sample->init = "sample_vocab";
  auto sampled = make_prompt_tuning(sample);
  sampled->attach(*sampled_model);
  auto rows = sampled->adapter_tensors().at("prompt_embeddings");
  for (int64_t i = 0; i < rows.size(0); ++i) {
    auto distance = (vocabulary - rows[i]).abs().sum(1).min().item<float>();
    EXPECT_EQ(distance, 0.0f) << "row " << i << " is not a vocabulary embedding";
  }
}

// Text and class-label inits, batched generation and position limits on the real stories260K and its tokenizer.
TEST(PromptLearning, TextAndClassLabelInitsOnStories) {
  auto tokenizer_path = test::stories_tokenizer();
  if (!tokenizer_path) GTEST_SKIP() << "stories260K tokenizer not available";
  std::string model_dir = test::source_dir() + "/third_party/stories260K-hf";
  auto tokenizer = load_tokenizer(*tokenizer_path, 1, 2);
  auto model = load_model(model_dir, {"float32", "cpu"});
  auto vocabulary = model->input_embeddings();

  auto text = prompt_options(8);
  text->init = "text";
  text->init_text = "Once upon a time";
  auto ids = tokenizer->encode(text->init_text);
  ASSERT_LT(ids.size(), 8u);
  auto method = make_prompt_tuning(text);
  method->prepare(*tokenizer);
  method->attach(*model);
  auto rows = method->adapter_tensors().at("prompt_embeddings");
  for (int64_t i = 0; i < 8; ++i) {  // tiled: row i is token i mod n
    EXPECT_TRUE(torch::equal(rows[i], vocabulary[ids[static_cast<size_t>(i) % ids.size()]])) << i;
  }
  EXPECT_EQ(method->adapter_config("stories")["prompt_tuning_init"], "TEXT");

  auto labels = prompt_options(4);
  labels->init = "class_labels";
  labels->class_labels = {"happy", "sad"};
  auto second_model = load_model(model_dir, {"float32", "cpu"});
  auto labelled = make_prompt_tuning(labels);
  labelled->prepare(*tokenizer);
  labelled->attach(*second_model);
  auto happy = tokenizer->encode("happy");
  auto expected = vocabulary.index_select(0, torch::tensor(happy, torch::kLong)).mean(0);
  EXPECT_TRUE(torch::allclose(labelled->adapter_tensors().at("prompt_embeddings")[0], expected));

  auto long_text = prompt_options(2);
  long_text->init = "text";
  long_text->init_text = "Once upon a time there was a dog";
  auto too_long = make_prompt_tuning(long_text);
  EXPECT_NE(error_of([&] { too_long->prepare(*tokenizer); }).find("longer than num_virtual_tokens 2"),
            std::string::npos);
}

TEST(PromptLearning, BatchedGreedyGenerationEqualsOneByOne) {
  std::string model_dir = test::source_dir() + "/third_party/stories260K-hf";
  for (bool prefix : {false, true}) {
    auto model = load_model(model_dir, {"float32", "cpu"});
    auto method = prefix ? make_prefix_tuning(prefix_options(6)) : make_prompt_tuning(prompt_options(6));
    method->attach(*model);
    std::vector<std::vector<int64_t>> prompts = {{1, 400, 261}, {1, 72}, {1, 300, 301, 302, 303, 70}};
    GenerationOptions options;
    options.max_new_tokens = 12;
    auto batched = generate_batch(*model, prompts, options);
    for (size_t i = 0; i < prompts.size(); ++i) {
      EXPECT_EQ(batched[i], generate(*model, prompts[i], options)) << (prefix ? "prefix " : "prompt ") << i;
      EXPECT_FALSE(batched[i].empty());
    }
  }
}

TEST(PromptLearning, VirtualTokensCountAgainstPositions) {
  auto model = fixture_model("llama_gqa_tied");
  int64_t positions = model->config().max_position_embeddings;
  auto prompt = make_prompt_tuning(prompt_options(6));
  prompt->attach(*model);
  EXPECT_EQ(model->max_sequence_length(), positions - 6);
  auto ids = torch::ones({1, positions - 5}, torch::kLong);
  std::string message = error_of([&] { model->logits(ids, torch::ones_like(ids)); });
  EXPECT_NE(message.find("+ 6 virtual tokens exceeds the model's max_position_embeddings"), std::string::npos)
      << message;
}

TEST(PromptLearning, TwoPromptsOrPrefixesCannotCompose) {
  auto model = fixture_model("llama_gqa_tied");
  auto two = make_methods({{"prompt_tuning", prompt_options()}, {"prompt_tuning", prompt_options()}});
  EXPECT_NE(error_of([&] { two->attach(*model); }).find("peft[1] (prompt_tuning): "), std::string::npos);
  auto other = fixture_model("llama_gqa_tied");
  auto prefixes = make_methods({{"prefix_tuning", prefix_options()}, {"prefix_tuning", prefix_options()}});
  EXPECT_NE(error_of([&] { prefixes->attach(*other); }).find("already has attention prefixes"), std::string::npos);
}

}  // namespace
}  // namespace peft
