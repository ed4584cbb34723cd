// A Jinja2 interpreter for Hugging Face chat templates (tokenizer_config.json's "chat_template"), rendering as
// transformers' apply_chat_template does: jinja2's ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks, the loopcontrols extension (break/continue), {% generation %} blocks (AssistantTracker), the tojson
// filter with ensure_ascii=False, and the globals raise_exception and strftime_now.
//
// Supported: text, {{ }}, {% %}, {# #} with whitespace control; if/elif/else, for (tuple targets, `if` filter,
// else, the loop variable), break/continue, set (names, tuples, ns.attr, block set), namespace(), macros
// (defaults, keyword arguments), generation, raw, print; Python expressions, the str/dict/list methods and the
// filters and tests chat templates use, with Python's semantics (Unicode code points, str() and repr() printing,
// int/float arithmetic). Refused with "<name> line N: ...": extends/include/import/block/filter/with/call and
// other statements, unknown filters and tests, mutating methods (list.append), recursive loops.
//
// Thread safety: a Template is immutable after construction; concurrent render() calls are safe.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace peft::jinja {

struct RenderOptions {
  // If non-empty, strftime_now(fmt) formats this fixed "YYYY-MM-DD HH:MM:SS" time (for tests); else the current
  // local time.
  std::string strftime_now_date;
};

struct Rendered {
  std::string text;
  // [begin, end) byte offsets of the {% generation %} blocks' output in text, in order.
  std::vector<std::pair<size_t, size_t>> generation_spans;
};

struct Stmt;

class Template {
 public:
  // Parses source; throws peft::Error "<name> line N: ..." on syntax errors or unsupported constructs.
  explicit Template(const std::string& source, std::string name = "chat template");
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;
  Template(const Template&) = delete;
  Template& operator=(const Template&) = delete;

  // context: a JSON object of variables (messages, add_generation_prompt, bos_token, eos_token, tools, ...).
  // Throws peft::Error "<name> line N: <what>" for errors while rendering (undefined values used, type errors, ...)
  // and "<name>: raise_exception: <message>" when the template calls raise_exception.
  Rendered render(const nlohmann::json& context, const RenderOptions& options = {}) const;
  // The same for an ordered_json context, whose objects keep their key order (tojson then writes keys in the input's
  // order, as Python does; nlohmann::json sorts object keys).
  Rendered render_ordered(const nlohmann::ordered_json& context, const RenderOptions& options = {}) const;

  bool has_generation_blocks() const { return has_generation_blocks_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::unique_ptr<std::vector<std::unique_ptr<Stmt>>> body_;
  bool has_generation_blocks_ = false;
};

}  // namespace peft::jinja
