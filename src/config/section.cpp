#include "config/section.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <yaml-cpp/depthguard.h>

#include "config/section_state.h"
#include "core/error.h"
#include "core/strings.h"

namespace peft {

namespace {

// The key node and value node of `key` in a mapping; both undefined when the key is absent.
struct Entry {
  YAML::Node key;
  YAML::Node value;
  bool found = false;
};

Entry find_entry(const YAML::Node& map, const std::string& key) {
  for (const auto& pair : map) {
    if (pair.first.IsScalar() && pair.first.Scalar() == key) return {pair.first, pair.second, true};
  }
  return {};
}

// YAML 1.2 core-schema integers in decimal only; "1.5", "1e3" and "0x10" are not integers here.
bool parse_int(const std::string& text, int64_t& out) {
  size_t start = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  if (start == text.size()) return false;
  for (size_t i = start; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  errno = 0;
  long long value = std::strtoll(text.c_str(), nullptr, 10);
  if (errno == ERANGE) return false;
  out = value;
  return true;
}

// Decimal or scientific notation ("2e-4", "0.1", "3"); no hex, inf or nan, which strtod would accept.
bool parse_double(const std::string& text, double& out) {
  if (text.empty()) return false;
  bool digit = false;
  for (char c : text) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E') {
      return false;
    }
  }
  if (!digit) return false;
  char* end = nullptr;
  errno = 0;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value)) return false;
  out = value;
  return true;
}

// The shortest text that reads back as exactly `value`, with ".0" added to whole numbers so the resolved
// config shows a float ("0.0002", "1e-08", "1.0").
std::string format_double(double value) {
  char buffer[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buffer, sizeof(buffer), "%.*g", precision, value);
    if (std::strtod(buffer, nullptr) == value) break;
  }
  std::string text = buffer;
  if (text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

YAML::Node string_list_node(const std::vector<std::string>& list) {
  YAML::Node node(YAML::NodeType::Sequence);
  for (const auto& item : list) node.push_back(item);
  node.SetStyle(YAML::EmitterStyle::Flow);
  return node;
}

// yaml-cpp's parser recurses once per nesting level and stops at 2000 levels, calling that a "bad file".
YAML::Node parse_yaml(const std::string& text, const std::string& file) {
  try {
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    throw Error(file + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: nested too deeply (" +
                std::to_string(e.depth()) + " levels, the parser's limit)");
  } catch (const YAML::ParserException& e) {
    throw Error(file + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + printable(e.msg));
  }
}

}  // namespace

YAML::Node load_yaml_file(const std::string& path, const std::string& what) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    if (std::filesystem::is_directory(path, error)) throw Error(what + " is a directory: " + path);
    throw Error(what + " not found: " + path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + what + ": " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse_yaml(text.str(), path);
}

std::string yaml_location(const std::string& file, const YAML::Node& node) {
  if (!node.IsDefined()) return file;
  YAML::Mark mark = node.Mark();
  if (mark.is_null() || mark.line < 0) return file;
  return file + ":" + std::to_string(mark.line + 1);
}

std::string describe_yaml(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "an empty value";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "'" + printable(node.Scalar()) + "'";
}

std::string emit_yaml(const YAML::Node& node) {
  YAML::Emitter out;
  out << node;
  std::string text = out.c_str();
  if (!text.empty() && text.back() != '\n') text += '\n';
  return text;
}

std::shared_ptr<Section::State> make_section_state(const YAML::Node& node, const std::string& file,
                                                   const std::string& path, std::shared_ptr<YAML::Node> resolved,
                                                   std::map<std::string, std::string> overrides) {
  auto state = std::make_shared<Section::State>();
  state->file = file;
  state->path = path;
  state->overrides = std::move(overrides);
  state->resolved = resolved ? std::move(resolved) : std::make_shared<YAML::Node>(YAML::NodeType::Map);
  if (!node.IsDefined() || node.IsNull()) {
    state->node = YAML::Node(YAML::NodeType::Map);
    return state;
  }
  if (!node.IsMap()) {
    throw Error(yaml_location(file, node) + ": section '" + path + "' must be a mapping of keys, got " +
                describe_yaml(node));
  }
  std::map<std::string, YAML::Node> seen;
  for (const auto& pair : node) {
    if (!pair.first.IsScalar()) {
      throw Error(yaml_location(file, pair.first) + ": " + path + ": keys must be plain names, got " +
                  describe_yaml(pair.first));
    }
    const std::string& key = pair.first.Scalar();
    auto previous = seen.find(key);
    if (previous != seen.end()) {
      throw Error(yaml_location(file, pair.first) + ": duplicate key '" + path + "." + printable(key) +
                  "' (first given at " + yaml_location(file, previous->second) + ")");
    }
    seen.emplace(key, pair.first);
  }
  state->node = node;
  return state;
}

Section::Section(std::shared_ptr<State> state) : state_(std::move(state)) {}
Section::~Section() = default;

Section Section::from_yaml_string(const std::string& yaml, const std::string& file_name, const std::string& path) {
  return Section(make_section_state(parse_yaml(yaml, file_name), file_name, path, nullptr));
}

std::string Section::resolved_yaml() const { return emit_yaml(*state_->resolved); }

const std::string& Section::path() const { return state_->path; }

bool Section::has(const std::string& key) const { return find_entry(state_->node, key).found; }

// Where messages about `key` point: the override that set it, the key's line, or the file.
static std::string key_location(const Section::State& state, const std::string& key) {
  auto override_text = state.overrides.find(key);
  if (override_text != state.overrides.end()) return "command line override " + printable(override_text->second);
  Entry entry = find_entry(state.node, key);
  return entry.found ? yaml_location(state.file, entry.key) : state.file;
}

void Section::fail(const std::string& key, const std::string& message) const {
  throw Error(key_location(*state_, key) + ": " + state_->path + "." + key + ": " + message);
}

namespace {

// Records `value` as the effective setting `path`.`key` in the shared resolved tree.
void record(Section::State& state, const std::string& key, const YAML::Node& value) {
  if (state.record_into) {
    (*state.record_into)[key] = value;
  } else {
    (*state.resolved)[state.path][key] = value;
  }
}

}  // namespace

void Section::get(const std::string& key, std::string& value) {
  state_->read.insert(key);
  Entry entry = find_entry(state_->node, key);
  if (entry.found) {
    if (!entry.value.IsScalar()) fail(key, "expected a string, got " + describe_yaml(entry.value));
    value = entry.value.Scalar();
  }
  record(*state_, key, YAML::Node(value));
}

void Section::get(const std::string& key, int64_t& value) {
  state_->read.insert(key);
  Entry entry = find_entry(state_->node, key);
  if (entry.found) {
    int64_t parsed = 0;
    if (!entry.value.IsScalar() || !parse_int(entry.value.Scalar(), parsed)) {
      fail(key, "expected an integer, got " + describe_yaml(entry.value));
    }
    value = parsed;
  }
  record(*state_, key, YAML::Node(std::to_string(value)));
}

void Section::get(const std::string& key, double& value) {
  state_->read.insert(key);
  Entry entry = find_entry(state_->node, key);
  if (entry.found) {
    double parsed = 0;
    if (!entry.value.IsScalar() || !parse_double(entry.value.Scalar(), parsed)) {
      fail(key, "expected a number, got " + describe_yaml(entry.value));
    }
    value = parsed;
  }
  record(*state_, key, YAML::Node(format_double(value)));
}

void Section::get(const std::string& key, bool& value) {
  state_->read.insert(key);
  Entry entry = find_entry(state_->node, key);
  if (entry.found) {
    // Only the YAML 1.2 spellings: "yes"/"on" are YAML 1.1 and too easy to write by accident.
    const std::string text = entry.value.IsScalar() ? entry.value.Scalar() : "";
    if (text == "true" || text == "True" || text == "TRUE") {
      value = true;
    } else if (text == "false" || text == "False" || text == "FALSE") {
      value = false;
    } else {
      fail(key, "expected true or false, got " + describe_yaml(entry.value));
    }
  }
  record(*state_, key, YAML::Node(value ? "true" : "false"));
}

void Section::get(const std::string& key, std::vector<std::string>& value) {
  state_->read.insert(key);
  Entry entry = find_entry(state_->node, key);
  if (entry.found) {
    if (!entry.value.IsSequence()) fail(key, "expected a list of strings, got " + describe_yaml(entry.value));
    std::vector<std::string> parsed;
    for (size_t i = 0; i < entry.value.size(); ++i) {
      const YAML::Node item = entry.value[i];
      if (!item.IsScalar()) {
        fail(key, "expected a list of strings, got " + describe_yaml(item) + " at item " + std::to_string(i + 1));
      }
      parsed.push_back(item.Scalar());
    }
    value = std::move(parsed);
  }
  record(*state_, key, string_list_node(value));
}

void Section::get(const std::string& key, std::vector<int64_t>& value) {
  state_->read.insert(key);
  Entry entry = find_entry(state_->node, key);
  if (entry.found) {
    if (!entry.value.IsSequence()) fail(key, "expected a list of integers, got " + describe_yaml(entry.value));
    std::vector<int64_t> parsed;
    for (size_t i = 0; i < entry.value.size(); ++i) {
      const YAML::Node item = entry.value[i];
      int64_t number = 0;
      if (!item.IsScalar() || !parse_int(item.Scalar(), number)) {
        fail(key, "expected a list of integers, got " + describe_yaml(item) + " at item " + std::to_string(i + 1));
      }
      parsed.push_back(number);
    }
    value = std::move(parsed);
  }
  std::vector<std::string> text;
  for (int64_t number : value) text.push_back(std::to_string(number));
  record(*state_, key, string_list_node(text));
}

void Section::get(const std::string& key, StringOrList& value) {
  state_->read.insert(key);
  Entry entry = find_entry(state_->node, key);
  if (entry.found) {
    if (entry.value.IsScalar()) {
      value = StringOrList{false, entry.value.Scalar(), {}};
    } else {
      std::vector<std::string> list;
      get(key, list);  // reports non-lists and non-string items
      value = StringOrList{true, "", std::move(list)};
    }
  }
  record(*state_, key, value.is_list ? string_list_node(value.list) : YAML::Node(value.string));
}

void Section::require(const std::string& key, std::string& value) {
  if (!has(key)) {
    std::string message = state_->file + ": missing required key '" + state_->path + "." + key + "'";
    // A misspelt key is the usual cause: point at it rather than leave finish() to report it later.
    std::vector<std::string> unread;
    for (const auto& pair : state_->node) {
      if (!state_->read.count(pair.first.Scalar())) unread.push_back(pair.first.Scalar());
    }
    std::string close = closest_match(key, unread);
    if (!close.empty())
      message += " ('" + state_->path + "." + printable(close) + "' at " + key_location(*state_, close) +
                 " looks like a misspelling of it)";
    throw Error(message);
  }
  get(key, value);
}

void Section::get_choice(const std::string& key, std::string& value, const std::vector<std::string>& allowed) {
  get(key, value);
  for (const auto& choice : allowed) {
    if (value == choice) return;
  }
  std::string message = "expected one of " + join(allowed, ", ") + ", got '" + printable(value) + "'";
  std::string close = closest_match(value, allowed);
  if (!close.empty()) message += " (did you mean '" + close + "'?)";
  fail(key, message);
}

void Section::finish(const std::string& owner) const {
  std::vector<std::string> known(state_->read.begin(), state_->read.end());
  for (const auto& pair : state_->node) {
    const std::string& key = pair.first.Scalar();
    if (state_->read.count(key)) continue;
    std::string message = key_location(*state_, key) + ": unknown key '" + state_->path + "." + printable(key) + "'";
    if (!owner.empty()) message += " for " + owner;
    std::string close = closest_match(key, known);
    if (!close.empty()) message += " (did you mean '" + printable(close) + "'?)";
    if (!owner.empty()) message += "; " + owner + " takes " + join(known, ", ");
    throw Error(message);
  }
}

}  // namespace peft
