// Conversations: {"messages": [{"role", "content"}, ...]} rendered with a chat template (the model's own from
// tokenizer_config.json, a template file, or a built-in) into token ids, with the assistant's turns marked for the
// loss. The template runs in io/jinja, with the variables Hugging Face's apply_chat_template passes.
//
// Which tokens are the assistant's: a template with {% generation %} blocks marks them itself. Otherwise each
// assistant turn is found by rendering the conversation up to it with the generation prompt: the turn starts where
// that prompt ends (or, for a template that renders earlier turns differently once more follow, where the turn's
// content is found) and runs to the template's end-of-turn marker, included, so the model learns to stop. The
// marker is read off the template by rendering a one-exchange probe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/dataset.h"

namespace peft {

class Tokenizer;
namespace jinja {
class Template;
}

// The built-in templates data.chat_template can name, for models without one of their own.
const std::vector<std::string>& builtin_chat_templates();

class ChatFormat {
 public:
  // `setting` is data.chat_template: "" (the model's own: chat_template.jinja, else tokenizer_config.json's
  // "chat_template"), a built-in name, or a template file. `model_dir` is where those files, and the bos and eos
  // text of tokenizer_config.json, are looked for. Returns null for "" when the model
  // has no template. Throws peft::Error naming a missing file or the template line that does not parse.
  static std::unique_ptr<ChatFormat> load(const std::string& setting, const std::string& model_dir,
                                          const Tokenizer& tokenizer);
  // A template given as text; bos_text/eos_text are what the template's bos_token and eos_token print.
  ChatFormat(const std::string& source, const std::string& name, std::string bos_text, std::string eos_text,
             const Tokenizer& tokenizer);
  ~ChatFormat();

  const std::string& name() const { return name_; }
  // The text that ends an assistant turn ("<|im_end|>", "<|eot_id|>", "</s>", ...).
  const std::string& end_of_turn() const { return end_of_turn_; }
  // Its token id when it is one token, else the tokenizer's EOS: generation stops there.
  int64_t end_of_turn_id() const;
  // strftime_now() in the template then formats this "YYYY-MM-DD HH:MM:SS" time instead of the current one
  // (Llama 3's template writes today's date): renders that repeat, for tests.
  void fix_date(const std::string& date) { date_ = date; }

  // messages: a JSON array of {"role", "content"} objects. Throws peft::Error with the template's own
  // raise_exception message when it rejects the conversation.
  std::string render(const nlohmann::json& messages, bool add_generation_prompt) const;
  // The whole conversation, the [begin, end) byte spans of its assistant turns and each span's message index.
  struct Rendered {
    std::string text;
    std::vector<std::pair<size_t, size_t>> assistant;
    std::vector<size_t> message;
  };
  Rendered render_turns(const nlohmann::json& messages) const;

  // Token ids of rendered text: bos, eos and end-of-turn text become their ids; the text between is encoded
  // with no BOS/EOS added. Pieces are cut at `spans`' edges too, and in_span (when given) says for each token
  // whether it lies inside one.
  std::vector<int64_t> encode(const std::string& text, const std::vector<std::pair<size_t, size_t>>& spans = {},
                              std::vector<bool>* in_span = nullptr) const;
  // A training example: loss on the assistant's turns from message `first_trained` on (a prompt/completion pair
  // trains on its completion only), or on every token when all_tokens. first_turn_end (when given) receives the
  // number of tokens up to the end of the first scored turn, so that a caller can tell whether truncation cut it.
  Example example(const nlohmann::json& messages, bool all_tokens, size_t first_trained = 0,
                  int64_t* first_turn_end = nullptr) const;

 private:
  std::string name_;
  std::unique_ptr<jinja::Template> template_;
  std::string bos_text_, eos_text_, end_of_turn_, date_;
  const Tokenizer& tokenizer_;
  std::vector<std::pair<std::string, int64_t>> special_;  // text -> id, longest first

  nlohmann::json variables(const nlohmann::json& messages, bool add_generation_prompt) const;
  void find_end_of_turn();
};

// The template for a run: `setting` (data.chat_template, --chat-template) when given, its errors thrown; else the
// model's own, where one that cannot be used is no error until a conversation needs it: `unavailable` then says
// why and null is returned.
std::unique_ptr<ChatFormat> load_chat_format(const std::string& setting, const std::string& model_dir,
                                             const Tokenizer& tokenizer, std::string& unavailable);

// The token ids that prompt a reply to one user turn: [{"role": "user", "content": text}] rendered with the
// generation prompt.
std::vector<int64_t> chat_prompt(const ChatFormat& format, const std::string& text);

// Where tokenizer_config.json is looked for: the tokenizer's directory (a file's parent).
std::string tokenizer_config_directory(const std::string& tokenizer_location);

// Checks a "messages" value: an array of objects, each with a string "role" and a string (or null) "content".
// Throws peft::Error "<where>: ..." naming the first bad message.
void check_messages(const nlohmann::json& messages, const std::string& where);

}  // namespace peft
