#include "data/generation.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_depth.h"
#include "core/strings.h"

namespace peft {
namespace {

// RFC 4180 records: comma-separated fields, double-quoted where they hold commas, quotes ("") or line breaks.
// Each record comes with the line it starts on.
std::vector<std::pair<int64_t, std::vector<std::string>>> read_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::pair<int64_t, std::vector<std::string>>> records;
  std::vector<std::string> fields(1);
  int64_t line = 1, record_line = 1;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        if (c == '\n') ++line;
        fields.back() += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = any = true;
    } else if (c == ',') {
      fields.emplace_back();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any) records.emplace_back(record_line, fields);
      fields.assign(1, "");
      any = false;
      record_line = ++line;
    } else {
      fields.back() += c;
      any = true;
    }
  }
  check(!quoted, path + ":" + std::to_string(record_line) + ": unterminated quoted field");
  if (any) records.emplace_back(record_line, fields);
  return records;
}

GenerationSet read_e2e(const std::string& path) {
  auto records = read_csv(path);
  check(!records.empty() && records[0].second == std::vector<std::string>{"mr", "ref"},
        path + ":1: expected the header mr,ref (E2E NLG's devset.csv / testset_w_refs.csv)");
  GenerationSet set;
  set.format = "e2e";
  std::map<std::string, size_t> index;  // MR -> example
  for (size_t r = 1; r < records.size(); ++r) {
    const auto& [line, fields] = records[r];
    check(fields.size() == 2,
          path + ":" + std::to_string(line) + ": expected 2 fields (mr, ref), got " + std::to_string(fields.size()));
    auto [at, added] = index.emplace(fields[0], set.examples.size());
    if (added) set.examples.push_back({fields[0], {}});
    set.examples[at->second].references.push_back(fields[1]);
  }
  return set;
}

GenerationSet read_jsonl(const std::string& path) {
  std::ifstream in(path);
  GenerationSet set;
  set.format = "jsonl";
  std::string text;
  for (int64_t line = 1; std::getline(in, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = path + ":" + std::to_string(line);
    check_json_depth(text, where);
    auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    check(json.is_object(), where + ": not a JSON object");
    check(json.contains("prompt") && json["prompt"].is_string(), where + ": needs a \"prompt\" string");
    GenerationExample example{json["prompt"].get<std::string>(), {}};
    if (json.contains("references")) {
      check(json["references"].is_array() && !json["references"].empty(),
            where + ": \"references\" must be a non-empty list of strings");
      for (const auto& reference : json["references"]) {
        check(reference.is_string(), where + ": \"references\" must hold strings");
        example.references.push_back(reference.get<std::string>());
      }
    } else {
      check(json.contains("completion") && json["completion"].is_string(),
            where + ": needs \"references\" (a list) or a \"completion\" string");
      example.references.push_back(json["completion"].get<std::string>());
    }
    set.examples.push_back(std::move(example));
  }
  return set;
}

}  // namespace

GenerationSet load_generation_set(const std::string& path) {
  std::error_code error;
  check(std::filesystem::is_regular_file(path, error), "generation data not found: " + path);
  GenerationSet set;
  if (ends_with(path, ".csv")) {
    set = read_e2e(path);
  } else if (ends_with(path, ".jsonl")) {
    set = read_jsonl(path);
  } else {
    throw Error("generation data " + path + ": expected a .csv (E2E NLG) or .jsonl file");
  }
  check(!set.examples.empty(), "generation data " + path + " holds no examples");
  return set;
}

std::string default_generation_template(const GenerationSet& set) {
  return set.format == "e2e" ? "{source}\n" : "{source}";
}

std::string generation_prompt(const std::string& template_text, const GenerationExample& example) {
  std::string out = template_text;
  const std::string key = "{source}";
  for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at + example.source.size())) {
    out.replace(at, key.size(), example.source);
  }
  return out;
}

}  // namespace peft
