// Helpers shared by the end-to-end tests, which run the real executables on the embedded stories260K.
#pragma once

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "test_util.h"

namespace peft::test {

inline std::string tool(const std::string& name) { return binary_dir() + "/" + name; }
inline std::string model_dir() { return source_dir() + "/third_party/stories260K-hf"; }
inline std::string data(const std::string& file) { return source_dir() + "/third_party/tinyshakespeare/" + file; }

// The first "loss: X" in a tool's output, or -1.
inline double parse_loss(const std::string& output) {
  std::smatch match;
  if (!std::regex_search(output, match, std::regex("loss: ([0-9.]+)"))) return -1.0;
  return std::stod(match[1]);
}

// Each bad input: exit code 1 and a single "error: ..." line naming the problem.
inline void expect_one_line_error(const CommandResult& result, const std::string& phrase) {
  EXPECT_EQ(result.exit_code, 1) << result.output;
  std::string last = result.output;
  while (!last.empty() && last.back() == '\n') last.pop_back();
  last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
  EXPECT_EQ(last.rfind("error: ", 0), 0u) << result.output;
  EXPECT_NE(last.find(phrase), std::string::npos) << result.output;
}

}  // namespace peft::test
