// Typed reading of one mapping of the YAML run config. Everything outside src/config sees this class, never
// yaml-cpp. A Section remembers which keys were read so that finish() can reject unknown keys with a
// "did you mean" hint, and records every value it returns (defaults included) into the resolved config.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace peft {

// A YAML value that may be one string or a list of strings (e.g. LoRA's target_modules).
struct StringOrList {
  bool is_list = false;
  std::string string;
  std::vector<std::string> list;
};

class Section {
 public:
  struct State;  // yaml-cpp lives only in section.cpp
  explicit Section(std::shared_ptr<State> state);
  ~Section();

  // A standalone section over a YAML mapping given as text (tests, tools); `file_name` and `path` ("model")
  // are used in messages. Throws peft::Error for invalid YAML or a non-mapping.
  static Section from_yaml_string(const std::string& yaml, const std::string& file_name, const std::string& path);

  // The resolved tree this section records into (shared by all sections of one config), as YAML text.
  std::string resolved_yaml() const;

  // "model", "peft", ...: used in messages as "<file>:<line>: model.dtype: ...".
  const std::string& path() const;

  bool has(const std::string& key) const;

  // Each get() leaves `value` unchanged when the key is absent (the in-class default) and throws
  // peft::Error naming file, line and key when the value has the wrong type.
  void get(const std::string& key, std::string& value);
  void get(const std::string& key, int64_t& value);
  void get(const std::string& key, double& value);
  void get(const std::string& key, bool& value);
  void get(const std::string& key, std::vector<std::string>& value);
  void get(const std::string& key, std::vector<int64_t>& value);
  void get(const std::string& key, StringOrList& value);

  // Like get(), but the key must be present.
  void require(const std::string& key, std::string& value);

  // Value must be one of `allowed` (error lists them).
  void get_choice(const std::string& key, std::string& value, const std::vector<std::string>& allowed);

  // Throws peft::Error "<where>: <path>.<key>: <message>" pointing at the key's line.
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  // Throws for the first key never read: "<file>:<line>: unknown key 'train.lerning_rate' (did you mean
  // 'learning_rate'?)". With an `owner` ("method 'bitfit'") the message says whose keys these are and lists
  // the ones it takes: "unknown key 'peft.r' for method 'bitfit'; method 'bitfit' takes biases, method".
  void finish(const std::string& owner = "") const;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace peft
