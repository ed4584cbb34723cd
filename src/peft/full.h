// Full fine-tuning: the baseline every PEFT comparison is measured against. Every parameter of the base model
// trains, and the result is a complete HF model directory (config.json, model.safetensors in the base's dtype,
// tokenizer files) rather than an adapter. As in HF transformers' Trainer, weight decay applies to matrices
// only: biases and norm weights are exempt. It takes no options and cannot be part of a composition (it
// already trains everything another method would add to).
#pragma once

#include "config/section.h"
#include "peft/method.h"

namespace peft {

struct FullOptions : MethodOptions {
  void read(Section&) override {}
};

std::unique_ptr<Method> make_full(std::shared_ptr<const MethodOptions> options);

}  // namespace peft
