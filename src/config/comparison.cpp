#include "config/comparison.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "config/section_state.h"
#include "core/error.h"
#include "core/strings.h"
#include "io/atomic_file.h"

namespace peft {
namespace {

// The peft section and optimiser keys of a mapping (a run config or an inline item).
ComparisonEntry read_entry(const YAML::Node& node, const std::string& file, const std::string& source, std::string name,
                           bool inline_item) {
  ComparisonEntry entry{std::move(name), source, "", {}, {}};
  check(node.IsMap(), yaml_location(file, node) + ": " + source + " must be a mapping with a peft section");
  check(static_cast<bool>(node["peft"]), yaml_location(file, node) + ": " + source + " has no peft section");
  entry.peft_yaml = emit_yaml(node["peft"]);
  for (const auto& pair : node) {
    std::string key = pair.first.as<std::string>();
    if (key == "peft" || (inline_item && key == "name")) continue;
    if (key != "train") {
      check(!inline_item, yaml_location(file, pair.first) + ": " + source + ": unknown key '" + key +
                              "' (an item has name, peft and train)");
      entry.ignored.push_back(key);
      continue;
    }
    check(pair.second.IsMap(), yaml_location(file, pair.second) + ": " + source + ": train must be a mapping");
    for (const auto& setting : pair.second) {
      std::string train_key = setting.first.as<std::string>();
      const auto& allowed = per_method_train_keys();
      if (std::find(allowed.begin(), allowed.end(), train_key) != allowed.end()) {
        entry.train.emplace_back(train_key,
                                 setting.second.IsScalar() ? setting.second.Scalar() : emit_yaml(setting.second));
      } else {
        check(!inline_item, yaml_location(file, setting.first) + ": " + source + ": train." + train_key +
                                " is the same for every method of a comparison (set it in the base config); a "
                                "method may set " +
                                join(allowed, ", "));
        entry.ignored.push_back("train." + train_key);
      }
    }
  }
  return entry;
}

std::string stem(const std::string& path) { return std::filesystem::path(path).stem().string(); }

}  // namespace

const std::vector<std::string>& per_method_train_keys() {
  static const std::vector<std::string> keys = {"learning_rate", "weight_decay", "lr_scheduler",
                                                "warmup_steps",  "warmup_ratio", "max_grad_norm",
                                                "adam_beta1",    "adam_beta2",   "adam_epsilon",
                                                "loraplus_lr_ratio"};
  return keys;
}

std::vector<ComparisonEntry> load_comparison_entries(const std::vector<std::string>& files) {
  std::vector<ComparisonEntry> entries;
  for (const auto& file : files) {
    YAML::Node root = load_yaml_file(file, "method config");
    if (root.IsMap() && root["methods"]) root = root["methods"];
    if (!root.IsSequence()) {
      entries.push_back(read_entry(root, file, file, stem(file), false));
      continue;
    }
    check(root.size() > 0, file + ": the list of methods is empty");
    for (size_t i = 0; i < root.size(); ++i) {
      const YAML::Node item = root[i];
      std::string source = file + " item " + std::to_string(i + 1);
      if (item.IsScalar()) {  // a run config file, relative to the list
        auto path = (std::filesystem::path(file).parent_path() / item.as<std::string>()).string();
        entries.push_back(read_entry(load_yaml_file(path, "method config"), path, path, stem(path), false));
        continue;
      }
      check(item.IsMap(), yaml_location(file, item) + ": " + source + " must be a file name or a mapping");
      std::string name = item["name"] ? item["name"].as<std::string>() : "";
      if (name.empty()) {
        const YAML::Node peft = item["peft"];
        name = peft && peft.IsMap() && peft["method"] ? peft["method"].as<std::string>()
                                                      : "method" + std::to_string(i + 1);
      }
      entries.push_back(read_entry(item, file, source, name, true));
    }
  }
  check(!entries.empty(), "no methods to compare");
  // Rows and output directories are named after the entries: make the names unique.
  std::set<std::string> taken;
  for (auto& entry : entries) {
    std::string name = entry.name;
    for (int n = 2; !taken.insert(name).second; ++n) name = entry.name + "-" + std::to_string(n);
    entry.name = name;
  }
  return entries;
}

void write_entry_config(const std::string& base_path, const ComparisonEntry& entry, const std::string& output_dir,
                        const std::string& path) {
  YAML::Node root = load_yaml_file(base_path, "config file");
  check(root.IsMap(), base_path + ": the config must be a mapping of sections");
  root["peft"] = YAML::Load(entry.peft_yaml);
  if (!root["train"] || !root["train"].IsMap()) root["train"] = YAML::Node(YAML::NodeType::Map);
  for (const auto& [key, value] : entry.train) root["train"][key] = YAML::Load(value);
  root["train"]["eval_every"] = 0;
  root["output"] = YAML::Node(YAML::NodeType::Map);
  root["output"]["dir"] = output_dir;
  root["output"]["overwrite"] = true;
  write_file_atomic(
      path, "# peft-compare: " + entry.name + " (" + entry.source + ") on " + base_path + "\n" + emit_yaml(root));
}

}  // namespace peft
