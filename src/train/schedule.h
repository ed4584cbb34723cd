// Learning-rate schedules as Hugging Face's get_scheduler computes them: linear warm-up from 0 over
// `warmup_steps`, then constant, linear decay to 0, or half-cosine decay to 0 at `total_steps`.
#pragma once

#include <cstdint>
#include <string>

namespace peft {

struct Schedule {
  std::string kind = "linear";  // constant | linear | cosine
  double peak = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;

  // The learning rate for optimiser step `step` (0-based).
  double at(int64_t step) const;
};

}  // namespace peft
