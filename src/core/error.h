// The one error type the tool throws for bad input. Its message is a single line saying what is wrong
// and where; the command-line mains print it and exit non-zero.
#pragma once

#include <stdexcept>
#include <string>

namespace peft {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws Error(message) unless condition holds.
inline void check(bool condition, const std::string& message) {
  if (!condition) throw Error(message);
}

}  // namespace peft
