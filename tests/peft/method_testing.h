// Helpers shared by the PEFT method tests: tiny fixture models, a fixed batch, and error capture.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config/section.h"
#include "core/error.h"
#include "data/batch.h"
#include "models/loader.h"
#include "peft/registry.h"
#include "test_util.h"
#include "train/loss.h"

namespace peft::test {

inline std::shared_ptr<CausalLM> fixture_model(const std::string& name = "llama_gqa_tied",
                                               const std::string& dtype = "float32") {
  return load_model(fixture("llama/" + name), {dtype, "cpu"});
}

// A method from its `peft` mapping, as YAML ("{method: lora, r: 4}").
inline std::unique_ptr<Method> method_from_yaml(const std::string& yaml) {
  auto section = Section::from_yaml_string(yaml, "test.yaml", "peft");
  std::string name;
  section.require("method", name);
  const auto& entry = find_method(name);
  auto options = entry.make_options();
  options->read(section);
  return entry.make_method(options);
}

inline torch::Tensor sample_ids() { return torch::tensor({{1, 5, 9, 3, 7, 11, 2, 4}, {1, 8, 6, 10, 12, 3, 5, 9}}); }

// Logits of sample_ids() without autograd.
inline torch::Tensor logits(CausalLM& model) {
  torch::NoGradGuard no_grad;
  auto ids = sample_ids();
  return model.logits(ids, torch::ones_like(ids));
}

// Training-mode forward and backward of the next-token loss on sample_ids().
inline void backward_on_sample(CausalLM& model) {
  Batch batch;
  batch.input_ids = sample_ids();
  batch.attention_mask = torch::ones_like(batch.input_ids);
  batch.labels = batch.input_ids.clone();
  model.train();
  causal_lm_loss(model, batch).backward();
}

}  // namespace peft::test
