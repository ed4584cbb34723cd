#include "data/encoder_inputs.h"

#include "core/error.h"
#include "models/model_config.h"
#include "io/tokenizer.h"

namespace peft {

EncoderSpecialTokens encoder_special_tokens(const Tokenizer& tokenizer, const ModelConfig& config,
                                            const std::string& location) {
  EncoderSpecialTokens special;
  if (config.model_type == "torchscript") {  // a module of unknown architecture: <bos> a <eos> (<eos> b <eos>)
    check(tokenizer.bos_id() >= 0 && tokenizer.eos_id() >= 0,
          "the tokenizer in " + location + " has no BOS / EOS token to frame classification inputs with");
    return {tokenizer.bos_id(), tokenizer.eos_id(), /*roberta=*/true};
  }
  special.roberta = config.model_type == "roberta";
  std::string cls = special.roberta ? "<s>" : "[CLS]", sep = special.roberta ? "</s>" : "[SEP]";
  special.cls = tokenizer.token_id(cls);
  special.sep = tokenizer.token_id(sep);
  check(special.cls >= 0 && special.sep >= 0, "the tokenizer in " + location + " has no " + cls + " / " + sep +
                                                  " token, which a " + config.model_type + " classifier needs");
  return special;
}

std::vector<Example> encoder_examples(const ClassificationSet& set, const Tokenizer& tokenizer,
                                      const EncoderSpecialTokens& special, int64_t max_length) {
  int64_t specials = set.pairs ? (special.roberta ? 4 : 3) : 2;
  check(max_length > specials, "max_length " + std::to_string(max_length) + " leaves no room for text");
  std::vector<Example> examples;
  examples.reserve(set.examples.size());
  for (const auto& item : set.examples) {
    auto a = tokenizer.encode(item.text_a);
    std::vector<int64_t> b = set.pairs ? tokenizer.encode(item.text_b) : std::vector<int64_t>{};
    while (static_cast<int64_t>(a.size() + b.size()) + specials > max_length) {
      (b.size() > a.size() ? b : a).pop_back();
    }
    Example example;
    example.class_label = item.label;
    auto append = [&](const std::vector<int64_t>& ids, int64_t type) {
      example.input_ids.insert(example.input_ids.end(), ids.begin(), ids.end());
      example.token_type_ids.insert(example.token_type_ids.end(), ids.size(), type);
    };
    append({special.cls}, 0);
    append(a, 0);
    append({special.sep}, 0);
    if (set.pairs) {
      int64_t second = special.roberta ? 0 : 1;
      if (special.roberta) append({special.sep}, 0);
      append(b, second);
      append({special.sep}, second);
    }
    example.labels.assign(example.input_ids.size(), kIgnoreIndex);  // no token-level loss
    examples.push_back(std::move(example));
  }
  return examples;
}

}  // namespace peft
