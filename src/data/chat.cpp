#include "data/chat.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_depth.h"
#include "io/jinja/template.h"
#include "io/tokenizer.h"

namespace fs = std::filesystem;

namespace peft {
namespace {

// `simple`: plain-text turns for models whose vocabulary has no chat tokens (the embedded stories260K); the end of
// an assistant turn is the model's EOS. `chatml`: the <|im_start|> / <|im_end|> layout of Qwen and many others.
const char* kSimpleTemplate =
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] | trim }}\n\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] | trim }}\n"
    "{% elif message['role'] == 'assistant' %}Assistant: {{ message['content'] | trim }}{{ eos_token }}\n"
    "{% else %}{{ raise_exception('the simple template knows the roles system, user and assistant, not ' + "
    "message['role']) }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}";

const char* kChatMlTemplate =
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

std::string read_text(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read " + what + " " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  check(!in.bad(), "cannot read " + what + " " + path + ": read error");
  return buffer.str();
}

// tokenizer_config.json writes a special token as a string, as {"content": ...} (an AddedToken) or null.
std::string token_text(const nlohmann::json& config, const char* key, const std::string& fallback,
                       const std::string& where) {
  auto found = config.find(key);
  if (found == config.end()) return fallback;
  if (found->is_null()) return "";
  if (found->is_string()) return found->get<std::string>();
  if (found->is_object() && found->contains("content") && (*found)["content"].is_string())
    return (*found)["content"].get<std::string>();
  throw Error(where + ": " + key + " must be a string, an object with a \"content\" string, or null");
}

// The template in tokenizer_config.json: a string, or (older files) a list of {"name", "template"} of which
// "default" is the chat template.
std::string config_template(const nlohmann::json& config, const std::string& where) {
  const auto& value = config["chat_template"];
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array()) {
    for (const auto& entry : value) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string())
        return entry["template"].get<std::string>();
    }
    throw Error(where + ": chat_template is a list without a \"default\" template");
  }
  throw Error(where + ": chat_template must be a string or a list of named templates");
}

}  // namespace

const std::vector<std::string>& builtin_chat_templates() {
  static const std::vector<std::string> names = {"simple", "chatml"};
  return names;
}

std::unique_ptr<ChatFormat> load_chat_format(const std::string& setting, const std::string& model_dir,
                                             const Tokenizer& tokenizer, std::string& unavailable) {
  unavailable.clear();
  if (!setting.empty()) return ChatFormat::load(setting, model_dir, tokenizer);
  try {
    return ChatFormat::load(setting, model_dir, tokenizer);
  } catch (const std::exception& e) {  // the model's template is only needed for conversations
    unavailable = e.what();
    return nullptr;
  }
}

std::vector<int64_t> chat_prompt(const ChatFormat& format, const std::string& text) {
  nlohmann::json turn = nlohmann::json::array({{{"role", "user"}, {"content", text}}});
  return format.encode(format.render(turn, true));
}

std::string tokenizer_config_directory(const std::string& tokenizer_location) {
  std::error_code error;
  if (fs::is_directory(tokenizer_location, error)) return tokenizer_location;
  return fs::path(tokenizer_location).parent_path().string();
}

void check_messages(const nlohmann::json& messages, const std::string& where) {
  check(messages.is_array(), where + ": \"messages\" must be a list of {\"role\", \"content\"} objects");
  check(!messages.empty(), where + ": \"messages\" is empty");
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& message = messages[i];
    std::string which = where + ": message " + std::to_string(i);
    check(message.is_object(), which + " is not an object");
    check(message.contains("role") && message["role"].is_string(), which + " has no \"role\" string");
    check(!message.contains("content") || message["content"].is_string() || message["content"].is_null(),
          which + ": \"content\" must be a string");
  }
}

std::unique_ptr<ChatFormat> ChatFormat::load(const std::string& setting, const std::string& model_dir,
                                             const Tokenizer& tokenizer) {
  nlohmann::json config = nlohmann::json::object();
  std::string config_path = (fs::path(model_dir) / "tokenizer_config.json").string();
  std::error_code error;
  bool has_config = !model_dir.empty() && fs::is_regular_file(config_path, error);
  if (has_config) {
    config = parse_json(read_text(config_path, "tokenizer config"), config_path);
    check(config.is_object(), config_path + ": expected a JSON object");
  }
  // Without a tokenizer_config.json the tokens print as Llama's do; they map to the config.json ids either way.
  std::string bos = token_text(config, "bos_token", "<s>", config_path);
  std::string eos = token_text(config, "eos_token", "</s>", config_path);

  if (setting.empty()) {
    // Recent transformers save the template beside the config as chat_template.jinja, and prefer that file.
    std::string jinja_path = (fs::path(model_dir) / "chat_template.jinja").string();
    if (!model_dir.empty() && fs::is_regular_file(jinja_path, error))
      return std::make_unique<ChatFormat>(read_text(jinja_path, "chat template"), jinja_path, bos, eos, tokenizer);
    if (!has_config || !config.contains("chat_template")) return nullptr;
    return std::make_unique<ChatFormat>(config_template(config, config_path), config_path + " chat_template", bos, eos,
                                        tokenizer);
  }
  if (setting == "simple") return std::make_unique<ChatFormat>(kSimpleTemplate, "simple", bos, eos, tokenizer);
  if (setting == "chatml") return std::make_unique<ChatFormat>(kChatMlTemplate, "chatml", bos, eos, tokenizer);
  check(fs::is_regular_file(setting, error),
        "chat template " + setting + " is neither a file nor a built-in template (simple, chatml)");
  return std::make_unique<ChatFormat>(read_text(setting, "chat template"), setting, bos, eos, tokenizer);
}

ChatFormat::ChatFormat(const std::string& source, const std::string& name, std::string bos_text, std::string eos_text,
                       const Tokenizer& tokenizer)
    : name_(name),
      template_(std::make_unique<jinja::Template>(source, name)),
      bos_text_(std::move(bos_text)),
      eos_text_(std::move(eos_text)),
      tokenizer_(tokenizer) {
  find_end_of_turn();
  auto add_special = [&](const std::string& text, int64_t fallback_id) {
    if (text.empty()) return;
    for (const auto& [known, id] : special_)
      if (known == text) return;
    int64_t id = tokenizer_.token_id(text);
    if (id < 0) id = fallback_id;
    if (id >= 0) special_.emplace_back(text, id);
  };
  add_special(bos_text_, tokenizer_.bos_id());
  add_special(eos_text_, tokenizer_.eos_id());
  add_special(end_of_turn_, -1);
  std::sort(special_.begin(), special_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

ChatFormat::~ChatFormat() = default;

nlohmann::json ChatFormat::variables(const nlohmann::json& messages, bool add_generation_prompt) const {
  // What apply_chat_template passes: the special tokens' text, the messages, the generation prompt flag.
  // A token the tokenizer does not have (Qwen's bos_token: null) is left undefined, as apply_chat_template does.
  nlohmann::json variables = {{"messages", messages},
                              {"tools", nullptr},
                              {"documents", nullptr},
                              {"add_generation_prompt", add_generation_prompt}};
  if (!bos_text_.empty()) variables["bos_token"] = bos_text_;
  if (!eos_text_.empty()) variables["eos_token"] = eos_text_;
  return variables;
}

std::string ChatFormat::render(const nlohmann::json& messages, bool add_generation_prompt) const {
  return template_->render(variables(messages, add_generation_prompt), {date_}).text;
}

// The marker after an assistant's content: what follows the reply both in [user, assistant] and in [user,
// assistant, user], trimmed ("<|im_end|>\n" and "<|im_end|>\n<|im_start|>user" give "<|im_end|>"), so that a
// closing trailer (Phi-3's final EOS) is not taken for it. A template that writes nothing there ends turns with EOS.
void ChatFormat::find_end_of_turn() {
  const std::string reply = "Hi";
  nlohmann::json user = {{"role", "user"}, {"content", "Hello"}};
  nlohmann::json assistant = {{"role", "assistant"}, {"content", reply}};
  std::string turn, longer;
  try {
    turn = render(nlohmann::json::array({user, assistant}), false);
  } catch (const Error& e) {
    throw Error(name_ + " cannot render a user/assistant exchange: " + e.what());
  }
  try {
    longer = render(nlohmann::json::array({user, assistant, {{"role", "user"}, {"content", "Again"}}}), false);
  } catch (const Error&) {
    longer = turn;  // a template that refuses a third turn: the exchange alone
  }
  size_t at = turn.rfind(reply), at_longer = longer.find(reply);
  check(at != std::string::npos && at_longer != std::string::npos,
        name_ + ": the assistant's reply does not appear in a rendered exchange");
  // What follows the reply in both renders; cut back to a whitespace or '>' boundary when they part inside a
  // token ("<|end|>\n</s>" and "<|end|>\n<|user|>" share "<|end|>\n<").
  std::string after = turn.substr(at + reply.size()), next = longer.substr(at_longer + reply.size());
  size_t shared = 0;
  while (shared < after.size() && shared < next.size() && after[shared] == next[shared]) ++shared;
  if (shared < after.size()) {
    while (shared > 0 && !std::isspace(static_cast<unsigned char>(after[shared - 1])) && after[shared - 1] != '>')
      --shared;
  }
  after.resize(shared);
  size_t first = after.find_first_not_of(" \t\r\n");
  size_t last = after.find_last_not_of(" \t\r\n");
  end_of_turn_ = first == std::string::npos ? eos_text_ : after.substr(first, last - first + 1);
  check(!end_of_turn_.empty(), name_ +
                                   ": an assistant turn ends with no marker and the tokenizer has no EOS text, "
                                   "so the loss cannot include the end of a turn");
}

int64_t ChatFormat::end_of_turn_id() const {
  for (const auto& [text, id] : special_)
    if (text == end_of_turn_) return id;
  return tokenizer_.eos_id();
}

ChatFormat::Rendered ChatFormat::render_turns(const nlohmann::json& messages) const {
  Rendered rendered;
  auto whole = template_->render(variables(messages, false), {date_});
  rendered.text = std::move(whole.text);
  if (template_->has_generation_blocks()) {
    rendered.assistant = std::move(whole.generation_spans);
    // Generation blocks are taken to wrap the assistant messages, one each, in order.
    for (size_t i = 0; i < messages.size(); ++i)
      if (messages[i]["role"] == "assistant") rendered.message.push_back(i);
    rendered.message.resize(rendered.assistant.size(), messages.size());
    return rendered;
  }
  const std::string& text = rendered.text;
  size_t cursor = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i]["role"] != "assistant") continue;
    std::string prompt =
        render(nlohmann::json(std::vector<nlohmann::json>(messages.begin(), messages.begin() + i)), true);
    size_t begin;
    if (prompt.size() >= cursor && text.compare(0, prompt.size(), prompt) == 0) {
      begin = prompt.size();
    } else {
      // The template renders this turn differently once later turns follow: find its content instead, after all
      // that the conversation before it renders to (so never inside the user's turn).
      std::string before =
          render(nlohmann::json(std::vector<nlohmann::json>(messages.begin(), messages.begin() + i)), false);
      size_t from = 0;
      while (from < before.size() && from < text.size() && before[from] == text[from]) ++from;
      std::string content =
          messages[i].value("content", nlohmann::json("")).is_string() ? messages[i]["content"].get<std::string>() : "";
      size_t first = content.find_first_not_of(" \t\r\n");
      size_t last = content.find_last_not_of(" \t\r\n");
      content = first == std::string::npos ? "" : content.substr(first, last - first + 1);
      check(!content.empty(), name_ + ": assistant message " + std::to_string(i) +
                                  " is empty and the template renders it differently once later turns follow, so "
                                  "its place in the conversation is unknown");
      begin = text.find(content, std::max(cursor, from));
      check(begin != std::string::npos,
            name_ + ": cannot find assistant message " + std::to_string(i) + " in the rendered conversation");
    }
    size_t end = end_of_turn_.empty() ? std::string::npos : text.find(end_of_turn_, begin);
    check(end != std::string::npos, name_ + ": assistant message " + std::to_string(i) + " has no end-of-turn " +
                                        "marker ('" + end_of_turn_ + "') in the rendered conversation");
    end += end_of_turn_.size();
    rendered.assistant.emplace_back(begin, end);
    rendered.message.push_back(i);
    cursor = end;
  }
  return rendered;
}

std::vector<int64_t> ChatFormat::encode(const std::string& text, const std::vector<std::pair<size_t, size_t>>& spans,
                                        std::vector<bool>* in_span) const {
  std::vector<int64_t> ids;
  if (in_span) in_span->clear();
  // Cut points: every span edge; pieces between are scanned for special-token text.
  std::vector<size_t> cuts = {0, text.size()};
  for (const auto& [begin, end] : spans) cuts.insert(cuts.end(), {begin, end});
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  auto inside = [&](size_t position) {
    return std::any_of(spans.begin(), spans.end(),
                       [&](const auto& span) { return span.first <= position && position < span.second; });
  };
  auto emit = [&](int64_t id, bool flag) {
    ids.push_back(id);
    if (in_span) in_span->push_back(flag);
  };
  for (size_t c = 0; c + 1 < cuts.size(); ++c) {
    size_t begin = cuts[c], end = cuts[c + 1];
    bool flag = inside(begin);
    size_t plain = begin;
    auto flush = [&](size_t until) {
      if (until > plain)
        for (int64_t id : tokenizer_.encode(text.substr(plain, until - plain))) emit(id, flag);
    };
    for (size_t at = begin; at < end;) {
      const std::pair<std::string, int64_t>* match = nullptr;
      for (const auto& special : special_) {
        if (special.first.size() <= end - at && text.compare(at, special.first.size(), special.first) == 0) {
          match = &special;
          break;
        }
      }
      if (!match) {
        ++at;
        continue;
      }
      flush(at);
      emit(match->second, flag);
      at += match->first.size();
      plain = at;
    }
    flush(end);
  }
  return ids;
}

Example ChatFormat::example(const nlohmann::json& messages, bool all_tokens, size_t first_trained,
                            int64_t* first_turn_end) const {
  Rendered rendered = render_turns(messages);
  std::vector<std::pair<size_t, size_t>> trained;
  for (size_t k = 0; k < rendered.assistant.size(); ++k)
    if (rendered.message[k] >= first_trained) trained.push_back(rendered.assistant[k]);
  std::vector<bool> assistant;
  Example example;
  example.input_ids = encode(rendered.text, trained, &assistant);
  example.labels.assign(example.input_ids.size(), kIgnoreIndex);
  int64_t first_end = -1;
  for (size_t t = 0; t < example.input_ids.size(); ++t) {
    if (assistant[t]) {
      example.labels[t] = example.input_ids[t];
      if (first_end < 0 || first_end == static_cast<int64_t>(t)) first_end = static_cast<int64_t>(t) + 1;
    }
    if (all_tokens) example.labels[t] = example.input_ids[t];
  }
  if (!example.labels.empty()) example.labels[0] = kIgnoreIndex;  // nothing predicts the first token
  if (first_turn_end) *first_turn_end = first_end;
  return example;
}

}  // namespace peft
