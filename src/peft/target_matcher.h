// PEFT's target_modules rules, shared by every method that adapts projections:
//   a list entry matches a module path exactly or as a ".suffix" (q_proj matches model.layers.0.self_attn.q_proj);
//   a single string is a regular expression that must match the whole path;
//   "all-linear" selects every linear layer except the output head.
#pragma once

#include <string>
#include <vector>

#include "config/section.h"
#include "models/causal_lm.h"

namespace peft {

struct TargetMatch {
  std::vector<std::string> paths;  // matched module paths, in model order
  std::vector<std::string> saved;  // target_modules as adapter_config.json records them
};

// Throws peft::Error "<option> <targets> matched no module; available: q_proj, k_proj, ..." when nothing
// matches, and for an invalid regular expression. `exclude` uses the same rules.
TargetMatch match_targets(Model& model, const StringOrList& targets, const StringOrList& exclude,
                          const std::string& option_name);

// Why `pattern` cannot be a target regular expression, or "" when it can: invalid syntax, or longer than
// kMaxTargetRegex characters (libstdc++ compiles regular expressions recursively: a huge pattern from a config file,
// such as 20,000 nested parentheses, would overflow the stack).
inline constexpr size_t kMaxTargetRegex = 4096;
std::string target_regex_problem(const std::string& pattern);

// Whether `path` matches `targets` under the rules above ("all-linear" is not handled here).
bool matches(const StringOrList& targets, const std::string& path);

std::string describe(const StringOrList& targets);

// `targets`, or the model family's default (PEFT's per-family mapping) when it is the empty list that stands for
// "not given" in method options.
StringOrList or_family_default(const StringOrList& targets, const Model& model, DefaultTargets which);

}  // namespace peft
