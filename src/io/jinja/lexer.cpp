#include "io/jinja/lexer.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "io/jinja/pystr.h"

namespace peft::jinja {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// A character as an error message quotes it.
std::string quoted_char(const std::string& s, size_t pos) {
  unsigned char c = static_cast<unsigned char>(s[pos]);
  if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
  char buf[16];
  std::snprintf(buf, sizeof(buf), "'\\x%02x'", c);
  return buf;
}

class Lexer {
 public:
  Lexer(const std::string& source, const std::string& name) : name_(name) {
    // jinja2 splits on \r\n, \r and \n, drops one trailing empty line, and joins with \n.
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        s_.push_back('\n');
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        s_.push_back(source[i]);
      }
    }
    if (!s_.empty() && s_.back() == '\n') s_.pop_back();
    for (size_t i = 0; i < s_.size(); ++i) {
      if (s_[i] == '\n') newlines_.push_back(i);
    }
  }

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < s_.size()) {
      size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        emit(TokenType::kText, s_.substr(pos), pos);
        break;
      }
      char kind = s_[tag + 1];
      size_t after = tag + 2;
      char sign = 0;
      if (after < s_.size() && (s_[after] == '-' || s_[after] == '+')) sign = s_[after++];
      size_t raw_body = kind == '%' ? match_raw_begin(after) : std::string::npos;
      emit(TokenType::kText, strip_before_tag(s_.substr(pos, tag - pos), sign, kind != '{'), pos);
      if (raw_body != std::string::npos) {
        pos = lex_raw(tag, raw_body);
      } else if (kind == '#') {
        pos = lex_comment(tag, after);
      } else {
        pos = lex_tag(tag, after, kind == '%');
      }
    }
    tokens_.push_back({TokenType::kEnd, "", line_at(s_.size())});
    return std::move(tokens_);
  }

 private:
  int line_at(size_t pos) const {
    return 1 + static_cast<int>(std::lower_bound(newlines_.begin(), newlines_.end(), pos) - newlines_.begin());
  }

  [[noreturn]] void fail(size_t pos, const std::string& what) const { syntax_error(name_, line_at(pos), what); }

  void emit(TokenType type, std::string value, size_t pos) {
    if (type == TokenType::kText && value.empty()) return;
    tokens_.push_back({type, std::move(value), line_at(pos)});
  }

  size_t find_tag(size_t pos) const {
    for (size_t i = s_.find('{', pos); i != std::string::npos && i + 1 < s_.size(); i = s_.find('{', i + 1)) {
      char next = s_[i + 1];
      if (next == '{' || next == '%' || next == '#') return i;
    }
    return std::string::npos;
  }

  // Length of the Python whitespace (\s, Unicode) starting at pos.
  size_t space_length(size_t pos) const {
    size_t end = pos;
    while (end < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[end]);
      if (c < 0x80) {
        if (!pystr::is_space(c)) break;
        ++end;
        continue;
      }
      size_t len = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
      std::u32string cp = pystr::decode(std::string_view(s_).substr(end, len));
      if (cp.size() != 1 || !pystr::is_space(cp[0])) break;
      end += len;
    }
    return end - pos;
  }

  bool starts_with(size_t pos, const char* text) const {
    return s_.compare(pos, std::char_traits<char>::length(text), text) == 0;
  }

  // jinja2's OptionalLStrip: `-` strips all whitespace before the tag; otherwise, for block and comment tags,
  // lstrip_blocks removes spaces and tabs between the start of the line and the tag.
  std::string strip_before_tag(std::string text, char sign, bool lstrip) const {
    if (sign == '-') {
      size_t end = text.size();
      while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        std::u32string cp = pystr::decode(std::string_view(text).substr(start, end - start));
        if (cp.size() != 1 || !pystr::is_space(cp[0])) break;
        end = start;
      }
      text.resize(end);
    } else if (sign != '+' && lstrip) {
      size_t line_start = text.rfind('\n');
      line_start = line_start == std::string::npos ? 0 : line_start + 1;
      if (line_start > 0 || line_starting_) {
        if (text.find_first_not_of(" \t", line_start) == std::string::npos) text.resize(line_start);
      }
    }
    return text;
  }

  // The end of a block tag at pos (`+%}`, `-%}` plus whitespace, or `%}` plus one newline); npos if none.
  size_t match_block_end(size_t pos) {
    if (starts_with(pos, "+%}")) {
      line_starting_ = false;
      return pos + 3;
    }
    if (starts_with(pos, "-%}")) {
      size_t end = pos + 3 + space_length(pos + 3);
      line_starting_ = s_[end - 1] == '\n';
      return end;
    }
    if (starts_with(pos, "%}")) {
      bool newline = pos + 2 < s_.size() && s_[pos + 2] == '\n';
      line_starting_ = newline;
      return pos + 2 + (newline ? 1 : 0);
    }
    return std::string::npos;
  }

  // `{% raw %}`: returns where the raw text begins, or npos when the tag is not raw.
  size_t match_raw_begin(size_t pos) const {
    pos += space_length(pos);
    if (!starts_with(pos, "raw")) return std::string::npos;
    pos += 3;
    pos += space_length(pos);
    if (starts_with(pos, "-%}")) return pos + 3 + space_length(pos + 3);
    if (starts_with(pos, "%}")) return pos + 2;
    return std::string::npos;
  }

  size_t lex_raw(size_t tag, size_t body) {
    line_starting_ = s_[body - 1] == '\n';
    for (size_t i = s_.find("{%", body); i != std::string::npos; i = s_.find("{%", i + 1)) {
      size_t p = i + 2;
      char sign = 0;
      if (p < s_.size() && (s_[p] == '-' || s_[p] == '+')) sign = s_[p++];
      p += space_length(p);
      if (!starts_with(p, "endraw")) continue;
      p += 6;
      p += space_length(p);
      size_t end = match_block_end(p);
      if (end == std::string::npos) continue;
      emit(TokenType::kText, strip_before_tag(s_.substr(body, i - body), sign, true), body);
      return end;
    }
    fail(tag, "missing end of raw block ({% endraw %})");
  }

  size_t lex_comment(size_t tag, size_t body) {
    size_t close = s_.find("#}", body);
    if (close == std::string::npos) fail(tag, "unclosed comment ('{#' without '#}')");
    size_t end = close + 2;
    char before = close > body ? s_[close - 1] : 0;
    if (before == '-') {
      end += space_length(end);
      line_starting_ = s_[end - 1] == '\n';
    } else if (before == '+') {
      line_starting_ = false;
    } else {
      line_starting_ = end < s_.size() && s_[end] == '\n';
      if (line_starting_) ++end;
    }
    return end;
  }

  size_t lex_tag(size_t tag, size_t pos, bool block) {
    emit(block ? TokenType::kBlockBegin : TokenType::kVariableBegin, "", tag);
    std::vector<char> balancing;
    while (true) {
      if (pos >= s_.size()) fail(tag, block ? "unclosed tag: '{%' without '%}'" : "unclosed tag: '{{' without '}}'");
      if (balancing.empty()) {
        size_t end = std::string::npos;
        if (block) {
          end = match_block_end(pos);
        } else if (starts_with(pos, "-}}")) {
          end = pos + 3 + space_length(pos + 3);
          line_starting_ = s_[end - 1] == '\n';
        } else if (starts_with(pos, "}}")) {
          end = pos + 2;
          line_starting_ = false;
        }
        if (end != std::string::npos) {
          emit(block ? TokenType::kBlockEnd : TokenType::kVariableEnd, "", pos);
          return end;
        }
      }
      if (size_t spaces = space_length(pos)) {
        pos += spaces;
        continue;
      }
      pos = lex_token(pos, balancing);
    }
  }

  // Digits with single underscores between them: (\d+_)*\d+. Returns the end, or npos.
  size_t match_digits(size_t pos) const {
    if (pos >= s_.size() || !is_digit(s_[pos])) return std::string::npos;
    while (pos < s_.size()) {
      if (is_digit(s_[pos])) {
        ++pos;
      } else if (s_[pos] == '_' && pos + 1 < s_.size() && is_digit(s_[pos + 1])) {
        pos += 2;
      } else {
        break;
      }
    }
    return pos;
  }

  // jinja2's float_re: digits then a fraction, an exponent or both; never right after a '.' (so `a.0.1` works).
  size_t match_float(size_t pos) const {
    if (pos > 0 && s_[pos - 1] == '.') return std::string::npos;
    size_t end = match_digits(pos);
    if (end == std::string::npos) return end;
    size_t fraction = std::string::npos;
    if (end < s_.size() && s_[end] == '.') fraction = match_digits(end + 1);
    size_t p = fraction != std::string::npos ? fraction : end;
    if (p < s_.size() && (s_[p] == 'e' || s_[p] == 'E')) {
      size_t q = p + 1;
      if (q < s_.size() && (s_[q] == '+' || s_[q] == '-')) ++q;
      size_t exponent = match_digits(q);
      if (exponent != std::string::npos) return exponent;
    }
    return fraction;
  }

  size_t match_integer(size_t pos) const {
    if (!is_digit(s_[pos])) return std::string::npos;
    if (s_[pos] == '0' && pos + 1 < s_.size()) {
      char prefix = static_cast<char>(s_[pos + 1] | 0x20);
      auto allowed = [prefix](char c) {
        char lower = static_cast<char>(c | 0x20);
        if (prefix == 'b') return c == '0' || c == '1';
        if (prefix == 'o') return c >= '0' && c <= '7';
        return is_digit(c) || (lower >= 'a' && lower <= 'f');
      };
      if (prefix == 'b' || prefix == 'o' || prefix == 'x') {
        size_t p = pos + 2, end = std::string::npos;
        while (p < s_.size()) {
          size_t q = s_[p] == '_' ? p + 1 : p;
          if (q >= s_.size() || !allowed(s_[q])) break;
          p = end = q + 1;
        }
        if (end != std::string::npos) return end;
      }
      size_t p = pos + 1;  // 0(_?0)*
      while (p < s_.size()) {
        size_t q = s_[p] == '_' ? p + 1 : p;
        if (q >= s_.size() || s_[q] != '0') break;
        p = q + 1;
      }
      return p;
    }
    return match_digits(pos);
  }

  size_t lex_string(size_t pos) {
    char quote = s_[pos];
    std::string value;
    size_t p = pos + 1;
    while (true) {
      if (p >= s_.size()) fail(pos, "unterminated string");
      char c = s_[p];
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        ++p;
        continue;
      }
      if (p + 1 >= s_.size()) fail(pos, "unterminated string");
      p = unescape(p, value);
    }
    emit(TokenType::kString, std::move(value), pos);
    return p + 1;
  }

  // One backslash escape at p, as Python's "unicode-escape" codec decodes it (jinja2 uses that codec).
  size_t unescape(size_t p, std::string& out) const {
    char c = s_[p + 1];
    auto hex = [&](size_t start, int digits) -> char32_t {
      char32_t v = 0;
      for (int i = 0; i < digits; ++i) {
        char h = start + i < s_.size() ? static_cast<char>(s_[start + i] | 0x20) : 0;
        if (!is_digit(h) && !(h >= 'a' && h <= 'f')) fail(p, "truncated \\" + std::string(1, c) + " escape in string");
        v = v * 16 + (is_digit(h) ? h - '0' : h - 'a' + 10);
      }
      return v;
    };
    switch (c) {
      case '\n':
        return p + 2;
      case 'a':
        out.push_back('\a');
        return p + 2;
      case 'b':
        out.push_back('\b');
        return p + 2;
      case 'f':
        out.push_back('\f');
        return p + 2;
      case 'n':
        out.push_back('\n');
        return p + 2;
      case 'r':
        out.push_back('\r');
        return p + 2;
      case 't':
        out.push_back('\t');
        return p + 2;
      case 'v':
        out.push_back('\v');
        return p + 2;
      case '\\':
      case '\'':
      case '"':
        out.push_back(c);
        return p + 2;
      case 'x':
        pystr::append_utf8(out, hex(p + 2, 2));
        return p + 4;
      case 'u':
        pystr::append_utf8(out, hex(p + 2, 4));
        return p + 6;
      case 'U': {
        char32_t v = hex(p + 2, 8);
        if (v > 0x10FFFF) fail(p, "illegal Unicode character in string escape");
        pystr::append_utf8(out, v);
        return p + 10;
      }
      case 'N':
        fail(p, "named Unicode escapes (\\N{...}) are not supported");
      default:
        break;
    }
    if (c >= '0' && c <= '7') {
      char32_t v = 0;
      size_t q = p + 1;
      for (int i = 0; i < 3 && q < s_.size() && s_[q] >= '0' && s_[q] <= '7'; ++i, ++q) v = v * 8 + (s_[q] - '0');
      pystr::append_utf8(out, v);
      return q;
    }
    out.push_back('\\');
    if (static_cast<unsigned char>(c) >= 0x80) {
      // jinja2 first writes non-ASCII characters as \x.. / \u.. / \U.. escapes, so "\é" reads as "\xe9".
      size_t len = 1;
      while (p + 1 + len < s_.size() && (static_cast<unsigned char>(s_[p + 1 + len]) & 0xC0) == 0x80) ++len;
      std::u32string cp = pystr::decode(std::string_view(s_).substr(p + 1, len));
      char buf[16];
      char32_t v = cp.empty() ? 0 : cp[0];
      std::snprintf(buf, sizeof(buf), v < 0x100 ? "x%02x" : v < 0x10000 ? "u%04x" : "U%08x", static_cast<unsigned>(v));
      out += buf;
      return p + 1 + len;
    }
    return p + 1;  // an unknown escape keeps its backslash; the character is read next
  }

  size_t lex_token(size_t pos, std::vector<char>& balancing) {
    char c = s_[pos];
    size_t end = match_float(pos);
    if (end != std::string::npos) {
      emit(TokenType::kFloat, s_.substr(pos, end - pos), pos);
      return end;
    }
    end = match_integer(pos);
    if (end != std::string::npos) {
      emit(TokenType::kInteger, s_.substr(pos, end - pos), pos);
      return end;
    }
    if (is_name_start(c)) {
      end = pos;
      while (end < s_.size() && is_name_char(s_[end])) ++end;
      emit(TokenType::kName, s_.substr(pos, end - pos), pos);
      return end;
    }
    if (c == '\'' || c == '"') return lex_string(pos);
    static const char* const kOperators[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "/", "*", "%", "~", "[",
                                             "]",  "(",  ")",  "{",  "}",  "<",  ">", "=", ".", ":", "|", ",", ";"};
    for (const char* op : kOperators) {
      if (!starts_with(pos, op)) continue;
      std::string text = op;
      if (text == "(" || text == "[" || text == "{") {
        balancing.push_back(text == "(" ? ')' : text == "[" ? ']' : '}');
      } else if (text == ")" || text == "]" || text == "}") {
        if (balancing.empty()) fail(pos, "unexpected '" + text + "'");
        if (balancing.back() != text[0]) {
          fail(pos, "unexpected '" + text + "', expected '" + std::string(1, balancing.back()) + "'");
        }
        balancing.pop_back();
      }
      emit(TokenType::kOperator, text, pos);
      return pos + text.size();
    }
    fail(pos, "unexpected character " + quoted_char(s_, pos));
  }

  const std::string& name_;
  std::string s_;
  std::vector<size_t> newlines_;
  std::vector<Token> tokens_;
  bool line_starting_ = true;  // the text before the next tag starts a line (lstrip_blocks applies at once)
};

}  // namespace

void syntax_error(const std::string& name, int line, const std::string& what) {
  throw Error(name + " line " + std::to_string(line) + ": " + what);
}

std::vector<Token> tokenize(const std::string& source, const std::string& name) { return Lexer(source, name).run(); }

}  // namespace peft::jinja
