#include "core/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <utility>

#include "core/error.h"

namespace peft {
namespace {

std::atomic<int> requested{0};
std::atomic<bool> installed{false};
struct sigaction previous_int, previous_term;

void write_stderr(const char* text) {
  ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

// Async-signal-safe: an atomic exchange, write(2) and _exit(2) only.
void on_signal(int signal) {
  if (requested.exchange(signal) != 0) {
    write_stderr("\nstopped at once: the last complete checkpoint is still valid\n");
    ::_exit(128 + signal);
  }
  write_stderr(signal == SIGINT ? "\ninterrupted: finishing the current step and saving a checkpoint "
                                  "(Ctrl-C again stops at once)\n"
                                : "\nterminated: finishing the current step and saving a checkpoint\n");
}

}  // namespace

InterruptGuard::InterruptGuard() {
  check(!installed.exchange(true), "internal: only one InterruptGuard may be active");
  requested = 0;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // file reads and writes in progress carry on
  // A signal the parent set to be ignored (nohup, a shell's background job) stays ignored, as Python does.
  for (auto [signal, previous] : {std::pair{SIGINT, &previous_int}, std::pair{SIGTERM, &previous_term}}) {
    sigaction(signal, &action, previous);
    if (previous->sa_handler == SIG_IGN) sigaction(signal, previous, nullptr);
  }
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &previous_int, nullptr);
  sigaction(SIGTERM, &previous_term, nullptr);
  requested = 0;
  installed = false;
}

int interrupt_requested() { return requested.load(); }

}  // namespace peft
