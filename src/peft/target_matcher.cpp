#include "peft/target_matcher.h"

#include <regex>
#include <set>

#include "core/error.h"
#include "core/strings.h"
#include "models/causal_lm.h"

namespace peft {
namespace {

std::string last_component(const std::string& path) {
  auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

}  // namespace

std::string target_regex_problem(const std::string& pattern) {
  if (pattern.size() > kMaxTargetRegex)
    return "regular expression of " + std::to_string(pattern.size()) + " characters is too long (the limit is " +
           std::to_string(kMaxTargetRegex) + ")";
  try {
    std::regex check_syntax(pattern);
  } catch (const std::regex_error& e) {
    return "invalid regular expression '" + printable(pattern) + "': " + e.what();
  }
  return "";
}

std::string describe(const StringOrList& targets) {
  if (!targets.is_list) return "'" + printable(targets.string) + "'";
  return "[" + join(targets.list, ", ") + "]";
}

bool matches(const StringOrList& targets, const std::string& path) {
  if (targets.is_list) {
    for (const auto& target : targets.list) {
      if (path == target || ends_with(path, "." + target)) return true;
    }
    return false;
  }
  if (targets.string.empty()) return false;
  return std::regex_match(path, std::regex(targets.string));
}

StringOrList or_family_default(const StringOrList& targets, const Model& model, DefaultTargets which) {
  if (!targets.is_list || !targets.list.empty()) return targets;
  return {true, "", model.default_targets(which)};
}

TargetMatch match_targets(Model& model, const StringOrList& targets, const StringOrList& exclude,
                          const std::string& option_name) {
  for (const auto* spec : {&targets, &exclude}) {
    if (spec->is_list || spec->string.empty() || spec->string == "all-linear") continue;
    std::string problem = target_regex_problem(spec->string);
    check(problem.empty(), option_name + ": " + problem);
  }
  bool all_linear = !targets.is_list && targets.string == "all-linear";
  TargetMatch match;
  std::set<std::string> names;
  std::vector<std::string> available;
  for (auto& [path, projection] : model.projections()) {
    std::string name = last_component(path);
    if (!model.is_output_head(path) && std::find(available.begin(), available.end(), name) == available.end()) {
      available.push_back(name);
    }
    bool selected = all_linear ? !model.is_output_head(path) : matches(targets, path);
    if (!selected || matches(exclude, path)) continue;
    match.paths.push_back(path);
    names.insert(name);
  }
  check(!model.projections().empty(), model.description() + " has no linear layer to adapt");
  check(!targets.is_list || !targets.list.empty(),
        option_name + ": " + model.description() +
            " has no default target modules (PEFT knows none for its architecture); name some of: " +
            join(available, ", "));
  check(!match.paths.empty(), option_name + " " + describe(targets) +
                                  " matched no module; available: " + join(available, ", ") +
                                  " (full paths look like " + model.projections().front().first + ")");
  // PEFT saves a list as a set and the resolved names for all-linear; a regex is kept as written.
  if (all_linear || targets.is_list) {
    match.saved.assign(names.begin(), names.end());
    if (targets.is_list) {
      std::set<std::string> given(targets.list.begin(), targets.list.end());
      match.saved.assign(given.begin(), given.end());
    }
  } else {
    match.saved = {targets.string};
  }
  return match;
}

}  // namespace peft
