// Helpers shared by the end-to-end tests, which run the real executables on the embedded stories260K.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <regex>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace peft::test {

inline std::string tool(const std::string& name) { return binary_dir() + "/" + name; }
inline std::string model_dir() { return source_dir() + "/third_party/stories260K-hf"; }
inline std::string data(const std::string& file) { return source_dir() + "/third_party/tinyshakespeare/" + file; }

// Every optimiser step's record (those with a "loss") of a run's train_log.jsonl.
inline std::vector<nlohmann::json> train_log_steps(const std::string& output_dir) {
  std::vector<nlohmann::json> records;
  std::istringstream lines(read_text(output_dir + "/train_log.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    auto record = nlohmann::json::parse(line);
    if (record.contains("loss")) records.push_back(std::move(record));
  }
  return records;
}

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

// Sentences from the fixture vocabulary whose label is decided by one sentiment word.
inline std::string sentiment_jsonl(int count, uint32_t seed) {
  const std::vector<std::string> positive = {"good", "great", "wonderful", "fun", "best"};
  const std::vector<std::string> negative = {"bad", "awful", "terrible", "boring", "worst"};
  const std::vector<std::string> subjects = {"the movie", "the film", "the plot", "the story", "this music"};
  const std::vector<std::string> adverbs = {"very", "really", "quite", "so", "too"};
  std::mt19937 random(seed);
  std::string lines;
  for (int i = 0; i < count; ++i) {
    bool good = random() % 2 == 0;
    const auto& words = good ? positive : negative;
    std::string text = subjects[random() % 5] + " was " + adverbs[random() % 5] + " " + words[random() % 5] + " .";
    lines += nlohmann::json{{"text", text}, {"label", good ? "positive" : "negative"}}.dump() + "\n";
  }
  return lines;
}

// "accuracy 0.9000 | ... (N examples; majority class 'x' 0.5500)" -> (accuracy, majority accuracy)
inline std::pair<double, double> parse_accuracy(const std::string& line) {
  std::smatch match;
  if (!std::regex_search(line, match, std::regex("accuracy ([0-9.]+) .*majority class '[^']*' ([0-9.]+)\\)"))) {
    return {-1, -1};
  }
  return {std::stod(match[1]), std::stod(match[2])};
}

}  // namespace peft::test
