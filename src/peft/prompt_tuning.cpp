#include "peft/prompt_tuning.h"

#include "core/error.h"
#include "core/strings.h"
#include "io/tokenizer.h"
#include "models/causal_lm.h"
#include "peft/adapter_io.h"
#include "peft/registration.h"
#include "peft/spot.h"

namespace peft {
namespace {

constexpr int64_t kMostCommonTokens = 5000;

class Prompt : public InputPrefix {
 public:
  explicit Prompt(torch::Tensor embeddings) : embeddings_(std::move(embeddings)) {}
  int64_t length() const override { return embeddings_.size(0); }
  torch::Tensor prefix(int64_t batch_size) override {
    return embeddings_.unsqueeze(0).expand({batch_size, embeddings_.size(0), embeddings_.size(1)});
  }

 private:
  torch::Tensor embeddings_;
};

std::string peft_init_name(const std::string& init) {
  if (init == "text") return "TEXT";
  if (init == "sample_vocab") return "SAMPLE_VOCAB";
  return "RANDOM";  // HF PEFT has no class-label init; the tensor is what matters once trained
}

class PromptTuning : public Method {
 public:
  explicit PromptTuning(std::shared_ptr<const PromptTuningOptions> options) : options_(std::move(options)) {}

  std::string name() const override { return "prompt_tuning"; }

  void prepare(const Tokenizer& tokenizer) override {
    const auto& o = *options_;
    int64_t l = o.num_virtual_tokens;
    if (o.init == "text") {
      auto ids = tokenizer.encode(o.init_text);
      check(!ids.empty(), "peft.init_text gives no tokens");
      check(static_cast<int64_t>(ids.size()) <= l, "peft.init_text is " + std::to_string(ids.size()) +
                                                       " tokens, longer than num_virtual_tokens " + std::to_string(l));
      for (int64_t i = 0; i < l; ++i) init_rows_.push_back({ids[static_cast<size_t>(i) % ids.size()]});
    } else if (o.init == "class_labels") {
      check(static_cast<int64_t>(o.class_labels.size()) <= l,
            "peft.class_labels has " + std::to_string(o.class_labels.size()) +
                " labels, more than num_virtual_tokens " + std::to_string(l));
      for (const auto& label : o.class_labels) {
        auto ids = tokenizer.encode(label);
        check(!ids.empty(), "peft.class_labels: '" + printable(label) + "' gives no tokens");
        init_rows_.push_back(ids);
      }
    }
  }

  void attach(Model& base) override {
    Transformer& model = require_transformer(base, "prompt_tuning");
    const auto& o = *options_;
    check(!model.hooks.input_prefix, "the model already has an input prompt (two prompt methods in one composition)");
    // Only the rows an init reads are converted to float32: the whole matrix can be gigabytes.
    auto vocabulary = model.input_embeddings().detach();  // (V, d), the model's dtype
    auto embeddings_of = [&](const torch::Tensor& ids) { return vocabulary.index_select(0, ids).to(torch::kFloat); };
    int64_t l = o.num_virtual_tokens, d = vocabulary.size(1), V = vocabulary.size(0);
    if (o.expected_token_dim > 0) {
      check(o.expected_token_dim == d, "adapter_config.json: token_dim " + std::to_string(o.expected_token_dim) +
                                           " does not match the model's hidden size " + std::to_string(d) +
                                           " (was it trained for another base model?)");
    }
    check((o.init != "text" && o.init != "class_labels") || o.expected_token_dim > 0 || !init_rows_.empty(),
          "prompt tuning with init: " + o.init + " needs the tokenizer (internal: prepare() was not called)");
    torch::NoGradGuard no_grad;
    auto options = torch::TensorOptions().dtype(torch::kFloat).device(vocabulary.device());
    torch::Tensor prompt;
    if (o.expected_token_dim == 0 && (o.init_from.is_list ? !o.init_from.list.empty() : !o.init_from.string.empty())) {
      prompt = transferred_prompt(l, d).to(options);
    } else if (o.init == "random" || o.expected_token_dim > 0) {
      prompt = torch::empty({l, d}, options).uniform_(-0.5, 0.5);
    } else {
      // sample_vocab for every row, then text / class-label rows over the first ones.
      auto sampled = torch::randint(0, std::min(kMostCommonTokens, V), {l}, options.dtype(torch::kLong));
      prompt = embeddings_of(sampled).clone();
      for (size_t i = 0; i < init_rows_.size(); ++i) {
        for (int64_t id : init_rows_[i]) {
          check(id >= 0 && id < V, "token id " + std::to_string(id) + " is outside the model's vocabulary");
        }
        auto ids = torch::tensor(init_rows_[i], options.dtype(torch::kLong));
        prompt[static_cast<int64_t>(i)].copy_(embeddings_of(ids).mean(0));
      }
    }
    check_name_free(model, "", "prompt_embeddings");
    prompt_ = model.register_parameter("prompt_embeddings", prompt, /*requires_grad=*/true);
    model.hooks.input_prefix = std::make_shared<Prompt>(prompt_);
    num_layers_ = model.config().num_hidden_layers;
    num_heads_ = model.config().num_attention_heads;
  }

  std::vector<std::string> targets() const override { return {"input embeddings (prompt_embeddings)"}; }

  // SPoT: the source prompt, or the similarity-weighted (or best) of several.
  torch::Tensor transferred_prompt(int64_t l, int64_t d) const {
    const auto& o = *options_;
    std::vector<std::string> directories = o.init_from.is_list ? o.init_from.list : std::vector{o.init_from.string};
    std::vector<SavedPrompt> sources;
    for (const auto& directory : directories) {
      sources.push_back(read_saved_prompt(directory));
      const auto& e = sources.back().embeddings;
      check(e.size(0) == l && e.size(1) == d, "peft.init_from " + directory + ": its prompt is " +
                                                  std::to_string(e.size(0)) + " × " + std::to_string(e.size(1)) +
                                                  ", this one is " + std::to_string(l) + " × " + std::to_string(d) +
                                                  " (num_virtual_tokens × hidden size must match)");
    }
    if (sources.size() == 1) return sources.front().embeddings;
    auto target = read_saved_prompt(o.target_prompt);
    check(target.embeddings.size(1) == d,
          o.target_prompt + ": prompt width " + std::to_string(target.embeddings.size(1)) +
              " differs from the sources' " + std::to_string(d) + " (another base model?)");
    std::vector<double> similarities;
    double total = 0;  // of the weights max(similarity, 0)
    size_t best = 0;   // the first most similar, as peft-similarity ranks them
    for (size_t i = 0; i < sources.size(); ++i) {
      similarities.push_back(prompt_similarity(o.similarity, target.embeddings, sources[i].embeddings));
      total += std::max(similarities[i], 0.0);
      if (similarities[i] > similarities[best]) best = i;
    }
    check(total > 0, "peft.init_from: no source prompt is positively similar to the target prompt " + o.target_prompt);
    bool weighted = o.combine == "weighted";
    torch::Tensor combined = torch::zeros({l, d});
    for (size_t i = 0; i < sources.size(); ++i) {
      double weight = weighted ? std::max(similarities[i], 0.0) / total : (i == best ? 1.0 : 0.0);
      if (weight > 0) combined += weight * sources[i].embeddings;
      spdlog::info("SPoT: {} {} similarity {:.4f}{}", sources[i].directory, o.similarity, similarities[i],
                   weighted ? fmt::format(", weight {:.4f}", weight) : (i == best ? ", chosen" : ""));
    }
    return combined;
  }

  std::vector<TrainableParameter> trainable_parameters() const override {
    return {{"prompt_embeddings", prompt_, true}};
  }

  std::map<std::string, torch::Tensor> adapter_tensors() const override {
    return {{"prompt_embeddings", prompt_.detach().to(torch::kCPU, torch::kFloat).contiguous()}};
  }

  void load_adapter_tensors(const std::map<std::string, torch::Tensor>& tensors) override {
    auto it = tensors.find("prompt_embeddings");
    check(it != tensors.end(), "adapter lacks tensor 'prompt_embeddings'");
    check(it->second.sizes() == prompt_.sizes(), "adapter tensor 'prompt_embeddings' has shape " +
                                                     c10::str(it->second.sizes()) + ", the model expects " +
                                                     c10::str(prompt_.sizes()) + " (num_virtual_tokens × hidden size)");
    check(tensors.size() == 1, "a prompt-tuning adapter holds only 'prompt_embeddings', this one has " +
                                   std::to_string(tensors.size()) + " tensors");
    torch::NoGradGuard no_grad;
    prompt_.copy_(it->second);
  }

  nlohmann::json adapter_config(const std::string& base_model_path) const override {
    const auto& o = *options_;
    auto config = common_adapter_config(base_model_path, "PROMPT_TUNING");
    config.update({
        {"num_attention_heads", num_heads_},
        {"num_layers", num_layers_},
        {"num_transformer_submodules", 1},
        {"num_virtual_tokens", o.num_virtual_tokens},
        {"prompt_tuning_init", peft_init_name(o.init)},
        {"prompt_tuning_init_text", o.init == "text" ? nlohmann::json(o.init_text) : nlohmann::json(nullptr)},
        {"token_dim", prompt_.size(1)},
        {"tokenizer_kwargs", nullptr},
        // HF PEFT requires a tokenizer for TEXT init; the base model directory holds it.
        {"tokenizer_name_or_path", o.init == "text" ? nlohmann::json(base_model_path) : nlohmann::json(nullptr)},
    });
    return config;
  }

  void merge(Model&) override {
    throw Error("prompt tuning cannot be merged into the base weights (the prompt is extra input)");
  }
  bool mergeable() const override { return false; }
  int64_t per_token_weights() const override { return 0; }  // the prompt adds positions instead (virtual tokens)

 private:
  std::shared_ptr<const PromptTuningOptions> options_;
  std::vector<std::vector<int64_t>> init_rows_;  // token ids whose mean embedding initialises row i
  torch::Tensor prompt_;
  int64_t num_layers_ = 0, num_heads_ = 0;
};

}  // namespace

void PromptTuningOptions::read(Section& section) {
  section.get("num_virtual_tokens", num_virtual_tokens);
  if (num_virtual_tokens < 1) {
    section.fail("num_virtual_tokens", "must be at least 1, got " + std::to_string(num_virtual_tokens));
  }
  section.get("init_from", init_from);
  bool transfer = init_from.is_list ? !init_from.list.empty() : !init_from.string.empty();
  if (transfer && section.has("init")) section.fail("init", "is replaced by init_from; give one of them");
  bool several = init_from.is_list && init_from.list.size() > 1;
  if (several) {
    section.get_choice("combine", combine, {"weighted", "best"});
    section.require("target_prompt", target_prompt);
    section.get_choice("similarity", similarity, {"mean_cosine", "token_cosine"});
  } else {
    for (const char* key : {"combine", "target_prompt", "similarity"}) {
      if (section.has(key)) section.fail(key, "is only used with init_from: [DIR, ...] (several source prompts)");
    }
  }
  section.get_choice("init", init, {"random", "sample_vocab", "text", "class_labels"});
  if (init == "text") {
    section.require("init_text", init_text);
    if (init_text.empty()) section.fail("init_text", "must not be empty");
  } else if (section.has("init_text")) {
    section.fail("init_text", "is only used with init: text");
  }
  if (init == "class_labels") {
    section.get("class_labels", class_labels);
    if (class_labels.empty()) section.fail("class_labels", "must list at least one label word");
  } else if (section.has("class_labels")) {
    section.fail("class_labels", "is only used with init: class_labels");
  }
}

std::shared_ptr<MethodOptions> PromptTuningOptions::from_adapter_config(const nlohmann::json& config) {
  auto options = std::make_shared<PromptTuningOptions>();
  options->num_virtual_tokens = positive_integer(config, "num_virtual_tokens");
  options->expected_token_dim = positive_integer(config, "token_dim");
  check_decoder_only(config);
  return options;
}

std::unique_ptr<Method> make_prompt_tuning(std::shared_ptr<const MethodOptions> options) {
  auto prompt = std::dynamic_pointer_cast<const PromptTuningOptions>(options);
  check(prompt != nullptr, "internal: prompt tuning built from options of another method");
  return std::make_unique<PromptTuning>(std::move(prompt));
}

}  // namespace peft
