#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace peft {

double Schedule::at(int64_t step) const {
  if (step < warmup_steps)
    return peak * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup_steps));
  if (kind == "constant") return peak;
  double progress =
      static_cast<double>(step - warmup_steps) / static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
  progress = std::min(1.0, std::max(0.0, progress));
  if (kind == "cosine") return peak * 0.5 * (1.0 + std::cos(M_PI * progress));
  return peak * (1.0 - progress);  // linear
}

}  // namespace peft
