// Helpers shared by the PEFT method tests: tiny fixture models, a fixed batch, and error capture.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/error.h"
#include "models/loader.h"
#include "test_util.h"

namespace peft::test {

inline std::shared_ptr<CausalLM> fixture_model(const std::string& name = "llama_gqa_tied",
                                               const std::string& dtype = "float32") {
  return load_model(fixture("llama/" + name), {dtype, "cpu"});
}

inline torch::Tensor sample_ids() { return torch::tensor({{1, 5, 9, 3, 7, 11, 2, 4}, {1, 8, 6, 10, 12, 3, 5, 9}}); }

// Logits of sample_ids() without autograd.
inline torch::Tensor logits(CausalLM& model) {
  torch::NoGradGuard no_grad;
  auto ids = sample_ids();
  return model.logits(ids, torch::ones_like(ids));
}

// The message of the peft::Error `action` throws, or "(no error)".
inline std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace peft::test
