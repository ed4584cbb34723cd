#include "data/classification.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_depth.h"
#include "core/strings.h"

namespace peft {
namespace {

struct Line {
  int64_t number;
  std::string text;
};

// Lines without their CR and the first line's byte-order mark; blank lines dropped.
std::vector<Line> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read classification data " + path);
  std::vector<Line> lines;
  std::string text;
  for (int64_t number = 1; std::getline(in, text); ++number) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (number == 1 && text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
    if (!text.empty()) lines.push_back({number, text});
  }
  return lines;
}

std::vector<std::string> split_tabs(const std::string& text) {
  std::vector<std::string> fields;
  size_t start = 0;
  for (size_t tab; (tab = text.find('\t', start)) != std::string::npos; start = tab + 1) {
    fields.push_back(text.substr(start, tab - start));
  }
  fields.push_back(text.substr(start));
  return fields;
}

std::string trim_trailing(std::string text) {
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// Where a TSV keeps its label and texts.
struct TsvLayout {
  std::string format;
  bool header = true;
  size_t columns = 0;
  size_t label = 0;
  std::vector<size_t> texts;
};

TsvLayout tsv_layout(const std::string& path, const std::vector<std::string>& first) {
  using Fields = std::vector<std::string>;
  if (first == Fields{"sentence", "label"}) return {"sst2", true, 2, 1, {0}};
  if (first == Fields{"label", "sentence"}) return {"sst2", true, 2, 0, {1}};
  if (first == Fields{"Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"}) return {"mrpc", true, 5, 0, {3, 4}};
  if (first == Fields{"index", "sentence1", "sentence2", "label"}) return {"rte", true, 4, 3, {1, 2}};
  if (first.size() == 4 && (first[1] == "0" || first[1] == "1")) return {"cola", false, 4, 1, {3}};
  TsvLayout layout{"tsv", true, first.size(), first.size(), {}};
  for (const char* name : {"sentence", "sentence1", "text", "text_a", "question", "sentence2", "text_b", "passage"}) {
    auto it = std::find(first.begin(), first.end(), name);
    if (it != first.end() && layout.texts.size() < 2) layout.texts.push_back(static_cast<size_t>(it - first.begin()));
  }
  auto label = std::find(first.begin(), first.end(), "label");
  check(label != first.end() && !layout.texts.empty(),
        path + ":1: unrecognised TSV header '" + printable(join(first, "\\t")) +
            "'; expected a `label` column and one or two text columns (sentence, sentence1/sentence2, text, "
            "question/passage), or GLUE's SST-2, CoLA, MRPC or RTE layout");
  layout.label = static_cast<size_t>(label - first.begin());
  return layout;
}

struct RawExample {
  int64_t line;
  std::string text_a, text_b, label;
};

std::vector<RawExample> read_tsv(const std::string& path, std::string& format, bool& pairs) {
  auto lines = read_lines(path);
  check(!lines.empty(), path + ": no examples");
  TsvLayout layout = tsv_layout(path, split_tabs(lines.front().text));
  format = layout.format;
  pairs = layout.texts.size() == 2;
  std::vector<RawExample> out;
  for (size_t i = layout.header ? 1 : 0; i < lines.size(); ++i) {
    auto fields = split_tabs(lines[i].text);
    check(fields.size() == layout.columns, path + ":" + std::to_string(lines[i].number) + ": expected " +
                                               std::to_string(layout.columns) + " tab-separated columns, got " +
                                               std::to_string(fields.size()));
    RawExample example{lines[i].number, trim_trailing(fields[layout.texts[0]]),
                       pairs ? trim_trailing(fields[layout.texts[1]]) : std::string(), fields[layout.label]};
    out.push_back(std::move(example));
  }
  return out;
}

std::string label_text(const nlohmann::json& label) {
  if (label.is_string()) return label.get<std::string>();
  if (label.is_boolean()) return label.get<bool>() ? "true" : "false";
  if (label.is_number_integer()) return std::to_string(label.get<int64_t>());
  return "";
}

std::vector<RawExample> read_jsonl(const std::string& path, bool& pairs) {
  static const std::pair<const char*, const char*> kFields[] = {{"text_a", "text_b"},    {"premise", "hypothesis"},
                                                                {"question", "passage"}, {"sentence1", "sentence2"},
                                                                {"text", nullptr},       {"sentence", nullptr}};
  std::vector<RawExample> out;
  for (const auto& line : read_lines(path)) {
    std::string where = path + ":" + std::to_string(line.number);
    check_json_depth(line.text, where);
    auto json = nlohmann::json::parse(line.text, nullptr, /*allow_exceptions=*/false);
    check(json.is_object(), where + ": not a JSON object");
    RawExample example{line.number, "", "", ""};
    bool found = false;
    for (const auto& [first, second] : kFields) {
      if (!json.contains(first) || !json[first].is_string()) continue;
      check(!second || (json.contains(second) && json[second].is_string()),
            where + ": has '" + first + "' but no string '" + (second ? second : "") + "'");
      example.text_a = json[first].get<std::string>();
      if (second) example.text_b = json[second].get<std::string>();
      pairs = second != nullptr;
      found = true;
      break;
    }
    check(found, where +
                     ": no text field (text, text_a/text_b, premise/hypothesis, question/passage, "
                     "sentence1/sentence2)");
    check(json.contains("label") && !label_text(json["label"]).empty(),
          where + ": no 'label' (a string, an integer or a boolean)");
    example.label = label_text(json["label"]);
    out.push_back(std::move(example));
  }
  check(!out.empty(), path + ": no examples");
  return out;
}

// The customary label order of the task, or of a known label set.
std::vector<std::string> default_label_names(const std::string& format, const std::vector<RawExample>& examples) {
  if (format == "sst2" || format == "cola" || format == "mrpc") return {"0", "1"};
  if (format == "rte") return {"entailment", "not_entailment"};
  std::set<std::string> seen;
  for (const auto& example : examples) seen.insert(example.label);
  auto within = [&](const std::set<std::string>& known) {
    return std::all_of(seen.begin(), seen.end(), [&](const std::string& label) { return known.count(label) > 0; });
  };
  if (within({"0", "1"})) return {"0", "1"};
  if (within({"false", "true"})) return {"false", "true"};
  if (within({"entailment", "not_entailment"})) return {"entailment", "not_entailment"};
  if (within({"entailment", "contradiction", "neutral"})) return {"entailment", "contradiction", "neutral"};
  return std::vector<std::string>(seen.begin(), seen.end());
}

}  // namespace

ClassificationSet load_classification(const std::string& path, std::vector<std::string> label_names) {
  ClassificationSet set;
  std::vector<RawExample> raw;
  if (ends_with(path, ".tsv")) {
    raw = read_tsv(path, set.format, set.pairs);
  } else if (ends_with(path, ".jsonl")) {
    set.format = "jsonl";
    raw = read_jsonl(path, set.pairs);
  } else {
    throw Error("classification data " + path + ": expected a .tsv or .jsonl file");
  }
  check(!raw.empty(), path + ": no examples");
  set.label_names = label_names.empty() ? default_label_names(set.format, raw) : std::move(label_names);
  std::map<std::string, int64_t> index;
  for (size_t i = 0; i < set.label_names.size(); ++i) index.emplace(set.label_names[i], static_cast<int64_t>(i));
  for (auto& example : raw) {
    auto it = index.find(example.label);
    check(it != index.end(), path + ":" + std::to_string(example.line) + ": label '" + printable(example.label) +
                                 "' is not one of " + join(set.label_names, ", "));
    set.examples.push_back({std::move(example.text_a), std::move(example.text_b), it->second});
  }
  return set;
}

}  // namespace peft
