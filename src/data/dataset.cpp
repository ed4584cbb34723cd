#include "data/dataset.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_depth.h"
#include "data/chat.h"
#include "data/generation.h"
#include "io/tokenizer.h"

namespace fs = std::filesystem;

namespace peft {
namespace {

std::string read_file(const std::string& path) {
  std::error_code error;
  check(fs::is_regular_file(path, error), "cannot read data file " + path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read data file " + path + ": cannot open it");
  std::stringstream buffer;
  buffer << in.rdbuf();
  check(!in.bad(), "cannot read data file " + path + ": read error");
  std::string contents = buffer.str();
  // A UTF-8 byte-order mark is an encoding marker, not text.
  if (contents.rfind("\xEF\xBB\xBF", 0) == 0) contents.erase(0, 3);
  return contents;
}

std::string lower_extension(const std::string& path) {
  std::string extension = fs::path(path).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return extension;
}

bool is_blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); });
}

void truncate(Example& example, int64_t max_length) {
  if (static_cast<int64_t>(example.input_ids.size()) > max_length) {
    example.input_ids.resize(max_length);
    example.labels.resize(max_length);
  }
}

// How many conversations truncation cut inside their first trained assistant turn.
struct ChatCounts {
  size_t conversations = 0, first_turn_cut = 0;
};

// A conversation record: {"messages"}, or {"prompt", "completion"} as lists of messages.
void conversation_to_example(const nlohmann::json& record, const ChatOptions& chat, int64_t max_length,
                             const std::string& where, Example& example, ChatCounts& counts) {
  check(chat.format != nullptr,
        where + ": a conversation needs a chat template, and " +
            (chat.unavailable.empty() ? "the model has none (tokenizer_config.json \"chat_template\")"
                                      : "the model's cannot be used: " + chat.unavailable) +
            "; set data.chat_template to a template file or a built-in (simple, chatml)");
  nlohmann::json messages;
  size_t first_trained = 0;
  if (record.contains("messages")) {
    messages = record["messages"];
    check_messages(messages, where);
  } else {
    const auto& prompt = record["prompt"];
    const auto& completion = record["completion"];
    check_messages(prompt, where + ": prompt");
    check_messages(completion, where + ": completion");
    messages = prompt;
    messages.insert(messages.end(), completion.begin(), completion.end());
    first_trained = prompt.size();
  }
  int64_t first_turn_end = -1;
  try {
    example = chat.format->example(messages, chat.all_tokens, first_trained, &first_turn_end);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  ++counts.conversations;
  if (first_turn_end > max_length) ++counts.first_turn_cut;
  truncate(example, max_length);
}

bool is_conversation(const nlohmann::json& record) {
  if (record.contains("messages")) return true;
  auto prompt = record.find("prompt");
  auto completion = record.find("completion");
  return prompt != record.end() && completion != record.end() && prompt->is_array() && completion->is_array();
}

// One record: {"prompt", "completion"} (preferred when both are strings, as TRL does) or {"text"}.
// Returns false when the record has neither form.
bool record_to_example(const nlohmann::json& record, const Tokenizer& tokenizer, int64_t max_length, Example& example) {
  if (!record.is_object()) return false;
  auto prompt = record.find("prompt");
  auto completion = record.find("completion");
  auto text = record.find("text");
  example.input_ids = {tokenizer.bos_id()};
  example.labels = {kIgnoreIndex};
  if (prompt != record.end() && completion != record.end() && prompt->is_string() && completion->is_string()) {
    for (int64_t id : tokenizer.encode(prompt->get<std::string>())) {
      example.input_ids.push_back(id);
      example.labels.push_back(kIgnoreIndex);
    }
    for (int64_t id : tokenizer.encode(completion->get<std::string>())) {
      example.input_ids.push_back(id);
      example.labels.push_back(id);
    }
    example.input_ids.push_back(tokenizer.eos_id());
    example.labels.push_back(tokenizer.eos_id());
  } else if (text != record.end() && text->is_string()) {
    for (int64_t id : tokenizer.encode(text->get<std::string>())) example.input_ids.push_back(id);
    example.input_ids.push_back(tokenizer.eos_id());
    example.labels = example.input_ids;
  } else {
    return false;
  }
  truncate(example, max_length);
  return true;
}

const char* kExpectedRecord =
    "expected a \"text\" string, \"prompt\" and \"completion\" strings (or lists of messages) or \"messages\"";

// Any record form: `where` names it (file:line) in errors.
Example load_record(const nlohmann::json& record, const Tokenizer& tokenizer, int64_t max_length,
                    const ChatOptions& chat, const std::string& where, ChatCounts& counts) {
  Example example;
  if (record.is_object() && is_conversation(record)) {
    conversation_to_example(record, chat, max_length, where, example, counts);
  } else {
    check(record_to_example(record, tokenizer, max_length, example), where + ": " + kExpectedRecord);
  }
  return example;
}

std::vector<Example> load_json_lines(const std::string& path, const std::string& contents, const Tokenizer& tokenizer,
                                     int64_t max_length, const ChatOptions& chat, ChatCounts& counts) {
  std::vector<Example> examples;
  std::istringstream lines(contents);
  std::string line;
  for (int64_t number = 1; std::getline(lines, line); ++number) {
    if (is_blank(line)) continue;
    std::string where = path + ":" + std::to_string(number);
    examples.push_back(load_record(parse_json(line, where), tokenizer, max_length, chat, where, counts));
  }
  return examples;
}

// A .json file is either JSON Lines or one array of records (the two layouts HF's "json" loader reads).
std::vector<Example> load_json(const std::string& path, const std::string& contents, const Tokenizer& tokenizer,
                               int64_t max_length, const ChatOptions& chat, ChatCounts& counts) {
  size_t first = contents.find_first_not_of(" \t\r\n");
  if (first == std::string::npos || contents[first] != '[')
    return load_json_lines(path, contents, tokenizer, max_length, chat, counts);
  nlohmann::json records = parse_json(contents, path);
  std::vector<Example> examples;
  for (size_t i = 0; i < records.size(); ++i) {
    std::string where = path + ": record " + std::to_string(i) + " of the array";
    examples.push_back(load_record(records[i], tokenizer, max_length, chat, where, counts));
  }
  return examples;
}

// The whole file is one stream, encoded in one call: BPE encoding is O(n log n) (about 1 s for the 1.1 MB of
// Tiny Shakespeare on one core), and splitting the text would change the tokens at the seams.
std::vector<Example> load_text(const std::string& contents, const Tokenizer& tokenizer, int64_t max_length) {
  std::vector<Example> examples;
  std::vector<int64_t> body = tokenizer.encode(contents);
  if (body.empty()) return examples;
  std::vector<int64_t> stream;
  stream.reserve(body.size() + 2);
  stream.push_back(tokenizer.bos_id());
  stream.insert(stream.end(), body.begin(), body.end());
  stream.push_back(tokenizer.eos_id());
  for (size_t start = 0; start < stream.size(); start += max_length) {
    size_t end = std::min(stream.size(), start + static_cast<size_t>(max_length));
    if (end - start < 2) break;  // a lone token predicts nothing
    Example example;
    example.input_ids.assign(stream.begin() + start, stream.begin() + end);
    example.labels = example.input_ids;
    examples.push_back(std::move(example));
  }
  return examples;
}

// A generation set (data/generation.h): every reference is a completion of its example's prompt, formatted with the
// template peft-eval --task generation prompts with.
std::vector<Example> load_generation_examples(const std::string& path, const Tokenizer& tokenizer, int64_t max_length) {
  auto set = load_generation_set(path);
  std::string template_text = default_generation_template(set);
  std::vector<Example> examples;
  for (const auto& item : set.examples) {
    for (const auto& reference : item.references) {
      Example example;
      record_to_example({{"prompt", generation_prompt(template_text, item)}, {"completion", reference}}, tokenizer,
                        max_length, example);
      examples.push_back(std::move(example));
    }
  }
  return examples;
}

}  // namespace

std::vector<Example> load_examples(const std::string& path, const Tokenizer& tokenizer, int64_t max_length,
                                   const ChatOptions& chat) {
  check(max_length >= 2, "max_length must be at least 2 to load " + path + " (got " + std::to_string(max_length) + ")");
  std::error_code error;
  check(fs::exists(path, error), "data file not found: " + path);
  std::string extension = lower_extension(path);
  check(extension == ".jsonl" || extension == ".json" || extension == ".txt" || extension == ".csv",
        "unsupported data file " + path + ": expected a .jsonl, .json, .txt or .csv (E2E NLG) file");
  std::vector<Example> examples;
  ChatCounts counts;
  if (extension == ".csv")
    examples = load_generation_examples(path, tokenizer, max_length);
  else if (extension == ".jsonl")
    examples = load_json_lines(path, read_file(path), tokenizer, max_length, chat, counts);
  else if (extension == ".json")
    examples = load_json(path, read_file(path), tokenizer, max_length, chat, counts);
  else
    examples = load_text(read_file(path), tokenizer, max_length);
  check(!examples.empty(), path + ": no examples (empty data set)");

  // Prompts that fill max_length leave nothing to learn from; say so rather than train on nothing.
  size_t unscored = std::count_if(examples.begin(), examples.end(), [](const Example& example) {
    return std::none_of(example.labels.begin() + 1, example.labels.end(),
                        [](int64_t label) { return label != kIgnoreIndex; });
  });
  if (unscored > 0)
    spdlog::warn("{}: {} of {} examples have no scored tokens after truncation to max_length {}", path, unscored,
                 examples.size(), max_length);
  if (counts.first_turn_cut > 0)
    spdlog::warn("{}: max_length {} cuts {} of {} conversations inside their first trained assistant turn", path,
                 max_length, counts.first_turn_cut, counts.conversations);
  if (counts.conversations > 0)
    spdlog::info("{}: {} conversations rendered with the chat template {}", path, counts.conversations,
                 chat.format->name());
  return examples;
}

}  // namespace peft
