// Reading the reference's expected.safetensors and comparing logits with it, for the model parity tests.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <string>

#include "io/safetensors.h"
#include "models/causal_lm.h"

namespace peft::test {

struct Expected {
  torch::Tensor input_ids, attention_mask, logits;
};

inline Expected read_expected(const std::string& path) {
  auto file = safetensors::File::open(path);
  return {file->tensor("input_ids").clone(), file->tensor("attention_mask").clone(), file->tensor("logits").clone()};
}

// Largest difference at real (unpadded) positions, relative to the logits' scale.
inline double relative_error(const torch::Tensor& actual, const Expected& expected) {
  auto mask = expected.attention_mask.to(torch::kBool).unsqueeze(-1).expand_as(expected.logits);
  auto difference = (actual.to(torch::kFloat) - expected.logits).abs().masked_select(mask).max().item<double>();
  double scale = std::max(1.0, expected.logits.abs().max().item<double>());
  return difference / scale;
}

inline torch::Tensor logits_of(CausalLM& model, const Expected& expected) {
  torch::NoGradGuard no_grad;
  model.eval();
  return model.logits(expected.input_ids, expected.attention_mask);
}

// Row `row` of `expected` alone, without its padding: its real positions must give the same logits.
inline Expected row_alone(const Expected& expected, int64_t row) {
  int64_t real = expected.attention_mask[row].sum().item<int64_t>();
  return {expected.input_ids.narrow(0, row, 1).narrow(1, 0, real),
          expected.attention_mask.narrow(0, row, 1).narrow(1, 0, real),
          expected.logits.narrow(0, row, 1).narrow(1, 0, real)};
}

}  // namespace peft::test
