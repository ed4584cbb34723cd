// Graceful interruption of long work (training): the first SIGINT or SIGTERM only sets a flag that the work polls
// at a safe point (after an optimiser step), so it can save a checkpoint and exit; a second one exits at once.
#pragma once

namespace peft {

// Installs the handlers for its lifetime and restores the previous ones afterwards. One at a time.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
};

// The signal that asked to stop (SIGINT or SIGTERM), or 0. Always 0 while no InterruptGuard is alive.
int interrupt_requested();

}  // namespace peft
