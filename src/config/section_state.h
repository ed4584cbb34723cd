// Internal to src/config: the yaml-cpp state behind a Section. Only section.cpp and run_config.cpp include
// this; everything else sees Section's typed interface.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "config/section.h"

namespace peft {

struct Section::State {
  YAML::Node node;             // the section's mapping (an empty map when the section is absent)
  std::string file;            // the config file, for messages
  std::string path;            // dotted path of this section: "model", "peft", ...
  std::set<std::string> read;  // keys get() has consumed; finish() rejects the others
  // key -> the "section.key=value" text given on the command line, for keys set by an override
  std::map<std::string, std::string> overrides;
  // Shared tree of effective values (given or default), keyed by section path then key.
  std::shared_ptr<YAML::Node> resolved;
  // Where this section records its values when that is not resolved[path]: one element of a list section
  // (the methods of a `peft` list record into resolved["peft"][i]).
  std::optional<YAML::Node> record_into;
};

// Builds a section state, checking that `node` is a mapping (null counts as empty) whose keys are unique
// scalars. `where` is the location of the section itself, used when the node is not a mapping.
std::shared_ptr<Section::State> make_section_state(const YAML::Node& node, const std::string& file,
                                                   const std::string& path, std::shared_ptr<YAML::Node> resolved,
                                                   std::map<std::string, std::string> overrides = {});

// The YAML in `path`; peft::Error "<what> not found: path" (or "is a directory", "cannot read") and
// "path:line: invalid YAML: ..." otherwise. `what` names the file's role, e.g. "config file".
YAML::Node load_yaml_file(const std::string& path, const std::string& what);

// "file:line" (1-based) for a node parsed from a file, or just "file" when the node has no position.
std::string yaml_location(const std::string& file, const YAML::Node& node);

// Block-style YAML text of `node`, as written to the resolved config.
std::string emit_yaml(const YAML::Node& node);

// "a list", "a mapping", "an empty value" or the quoted scalar: the "got ..." part of type errors.
std::string describe_yaml(const YAML::Node& node);

}  // namespace peft
