// Splits a template into text and tag tokens as jinja2's lexer does under Hugging Face's settings
// (trim_blocks=True, lstrip_blocks=True): `{%- -%}` / `{{- -}}` / `{#- -#}` strip whitespace, a block or comment
// tag drops the newline after it and the spaces before it on its line (`{%+` and `+%}` opt out), `{{ }}` is never
// trimmed by those settings, and `{% raw %}...{% endraw %}` is kept as text.
#pragma once

#include <string>
#include <vector>

namespace peft::jinja {

enum class TokenType {
  kText,
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,   // value: the unescaped text
  kInteger,  // value: the literal as written (underscores, 0x/0o/0b prefixes)
  kFloat,
  kOperator,
  kEnd,
};

struct Token {
  TokenType type;
  std::string value;
  int line;
};

// Throws peft::Error "<name> line <line>: <what>".
[[noreturn]] void syntax_error(const std::string& name, int line, const std::string& what);

// Ends with one kEnd token. Newlines are normalised to "\n" and one trailing newline is dropped, as in jinja2.
std::vector<Token> tokenize(const std::string& source, const std::string& name);

}  // namespace peft::jinja
