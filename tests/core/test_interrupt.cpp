// Graceful interruption: the first SIGINT/SIGTERM only raises the flag the trainer polls; a second exits at once
// with 128 + signal; handlers are restored afterwards, and a signal the parent ignored stays ignored.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include "core/interrupt.h"

namespace peft {
namespace {

TEST(Interrupt, FirstSignalRaisesTheFlagOnly) {
  EXPECT_EQ(interrupt_requested(), 0);
  {
    InterruptGuard guard;
    EXPECT_EQ(interrupt_requested(), 0);
    ::raise(SIGTERM);
    EXPECT_EQ(interrupt_requested(), SIGTERM);
  }
  EXPECT_EQ(interrupt_requested(), 0) << "no guard, no request";
  struct sigaction current {};
  sigaction(SIGTERM, nullptr, &current);
  EXPECT_EQ(current.sa_handler, SIG_DFL) << "the previous handler is restored";
}

TEST(InterruptDeathTest, SecondSignalExitsAtOnce) {
  EXPECT_EXIT(
      {
        InterruptGuard guard;
        ::raise(SIGINT);
        ::raise(SIGINT);
        std::_Exit(0);  // not reached
      },
      ::testing::ExitedWithCode(128 + SIGINT), "stopped at once");
}

TEST(Interrupt, IgnoredSignalStaysIgnored) {
  struct sigaction ignore {
  }, previous{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &previous);
  {
    InterruptGuard guard;
    ::raise(SIGINT);
    EXPECT_EQ(interrupt_requested(), 0);
  }
  sigaction(SIGINT, &previous, nullptr);
}

}  // namespace
}  // namespace peft
