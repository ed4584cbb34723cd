#include "io/jinja/filters.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <unordered_map>
#include <vector>

#include "io/jinja/builtins.h"
#include "io/jinja/pystr.h"

namespace peft::jinja {
namespace {

using Filter = Value (*)(Interpreter&, const Value&, const Args&);
using Test = bool (*)(Interpreter&, const Value&, const Args&);

std::vector<Value> bind(const std::string& function, const Args& args, const std::vector<std::string>& params,
                        size_t required = 0) {
  return bind_args(function, args, params, required);
}

// Charges the work of reading a string argument to the render's budget.
void charge_text(const std::string& s) { charge_work(1 + s.size() / 64); }

// ---------------------------------------------------------------- filters
// jinja2's make_attrgetter: "a.b.0" looks up a, then b, then item 0.
std::vector<Value> attribute_path(const Value& attribute) {
  if (!attribute.is_string()) return {attribute};
  std::vector<Value> parts;
  size_t start = 0;
  const std::string& text = attribute.str();
  while (true) {
    size_t dot = text.find('.', start);
    std::string part = text.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    parts.push_back(digits ? Value(static_cast<int64_t>(std::strtoll(part.c_str(), nullptr, 10))) : Value(part));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

Value follow(Value item, const std::vector<Value>& path) {
  for (const Value& part : path) item = get_item(item, part);
  return item;
}

// A sort / min / max / unique key: the attribute(s) named, lower-cased unless case-sensitive.
struct KeyMaker {
  KeyMaker(const Value& attribute, bool case_sensitive) : case_sensitive(case_sensitive) {
    if (!given(attribute) || attribute.is_none()) return;
    if (attribute.is_string() && attribute.str().find(',') != std::string::npos) {
      for (const std::string& part : pystr::split(attribute.str(), std::string(","), -1)) {
        paths.push_back(attribute_path(Value(part)));
      }
    } else {
      paths.push_back(attribute_path(attribute));
    }
  }
  Value key(const Value& item) const {
    auto fold = [this](Value v) { return !case_sensitive && v.is_string() ? Value(pystr::lower(v.str())) : v; };
    if (paths.empty()) return fold(item);
    if (paths.size() == 1) return fold(follow(item, paths[0]));
    std::vector<Value> keys;
    for (const auto& path : paths) keys.push_back(fold(follow(item, path)));
    return Value::list(std::move(keys), true);
  }
  bool case_sensitive;
  std::vector<std::vector<Value>> paths;
};

std::vector<Value> sorted(std::vector<Value> items, const KeyMaker& maker, bool reverse) {
  std::vector<std::pair<Value, Value>> keyed;
  for (Value& item : items) keyed.emplace_back(maker.key(item), std::move(item));
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& a, const auto& b) {
    return reverse ? compare(CompareOp::kLt, b.first, a.first) : compare(CompareOp::kLt, a.first, b.first);
  });
  std::vector<Value> out;
  for (auto& entry : keyed) out.push_back(std::move(entry.second));
  return out;
}

Value f_abs(Interpreter&, const Value& v, const Args& args) {
  bind("abs", args, {});
  if (v.is_int()) {
    if (v.as_int() == INT64_MIN) throw RenderError("integer overflow: results past 64 bits are not supported");
    return Value(static_cast<int64_t>(std::llabs(v.as_int())));
  }
  if (v.is_number()) return Value(std::fabs(v.as_float()));
  if (v.is_undefined()) v.raise_undefined();
  throw RenderError("bad operand type for abs(): '" + v.type_name() + "'");
}

Value f_capitalize(Interpreter&, const Value& v, const Args& args) {
  bind("capitalize", args, {});
  return Value(pystr::capitalize(v.to_string()));
}

Value f_length(Interpreter&, const Value& v, const Args& args) {
  bind("length", args, {});
  return Value(length(v));
}

Value f_default(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("default", args, {"default_value", "boolean"});
  if (v.is_undefined() || (flag(a[1], false) && !v.truthy())) return given(a[0]) ? a[0] : Value("");
  return v;
}

Value f_dictsort(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("dictsort", args, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) throw RenderError("dictsort: expected a dict, got " + v.type_name());
  std::string by = given(a[1]) ? string_arg(a[1], "dictsort by") : "key";
  if (by != "key" && by != "value") throw RenderError("You can only sort by either \"key\" or \"value\"");
  std::vector<Value> pairs;
  for (const auto& [key, value] : v.dict().items()) pairs.push_back(Value::list({key, value}, true));
  return Value::list(
      sorted(std::move(pairs), KeyMaker(Value(by == "key" ? 0 : 1), flag(a[0], false)), flag(a[2], false)));
}

Value f_escape(Interpreter&, const Value& v, const Args& args) {
  bind("escape", args, {});
  std::string out;
  for (char c : v.to_string()) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '"':
        out += "&#34;";
        break;
      default:
        out.push_back(c);
    }
  }
  return Value(std::move(out));
}

Value f_first(Interpreter&, const Value& v, const Args& args) {
  bind("first", args, {});
  std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(Interpreter&, const Value& v, const Args& args) {
  bind("last", args, {});
  std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

// Python's float(str): surrounding whitespace, a sign, digits with single underscores, inf / nan.
std::optional<double> parse_float(const std::string& text) {
  std::string s = pystr::strip(text, std::nullopt, true, true);
  std::string lower = pystr::lower(s);
  std::string body = (!lower.empty() && (lower[0] == '+' || lower[0] == '-')) ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    double value = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -value : value;
  }
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '_') {
      bool between = i > 0 && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
                     std::isdigit(static_cast<unsigned char>(s[i + 1]));
      if (!between) return std::nullopt;
      continue;
    }
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'e' && c != 'E' && c != '+' && c != '-') {
      return std::nullopt;
    }
    clean.push_back(c);
  }
  if (clean.empty()) return std::nullopt;
  char* end = nullptr;
  double value = std::strtod(clean.c_str(), &end);
  if (*end != '\0' || clean.find_first_of("0123456789") == std::string::npos) return std::nullopt;
  return value;
}

// Python's int(str, base) for base 10 (and 2/8/16 with or without their prefix).
std::optional<int64_t> parse_int(const std::string& text, int base) {
  std::string s = pystr::strip(text, std::nullopt, true, true);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.erase(0, 1);
  }
  if (s.size() > 2 && s[0] == '0') {
    char p = static_cast<char>(s[1] | 0x20);
    if ((p == 'x' && base == 16) || (p == 'o' && base == 8) || (p == 'b' && base == 2)) s.erase(0, 2);
  }
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size() && s[i - 1] != '_') continue;
    clean.push_back(s[i]);
  }
  if (clean.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long value = std::strtoll(clean.c_str(), &end, base);
  if (*end != '\0' || !std::isalnum(static_cast<unsigned char>(clean[0]))) return std::nullopt;
  if (errno == ERANGE) throw RenderError("integer overflow: results past 64 bits are not supported");
  return static_cast<int64_t>(negative ? -value : value);
}

Value f_float(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("float", args, {"default"});
  Value fallback = given(a[0]) ? a[0] : Value(0.0);
  if (v.is_number()) return Value(v.as_float());
  if (v.is_string()) {
    if (auto parsed = parse_float(v.str())) return Value(*parsed);
  }
  return fallback;
}

Value f_int(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("int", args, {"default", "base"});
  Value fallback = given(a[0]) ? a[0] : Value(0);
  int base = given(a[1]) ? static_cast<int>(integer(a[1], "int base")) : 10;
  if (v.is_int()) return Value(v.as_int());
  if (v.type() == Value::Type::kFloat) {
    double d = v.as_float();
    if (std::isnan(d)) return fallback;
    if (std::isinf(d)) throw RenderError("cannot convert float infinity to integer");
    if (std::fabs(d) >= 9.2e18) throw RenderError("integer overflow: results past 64 bits are not supported");
    return Value(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    if (base >= 2 && base <= 36) {
      if (auto parsed = parse_int(v.str(), base)) return Value(*parsed);
    }
    if (auto parsed = parse_float(v.str())) {  // "42.23"|int is 42
      if (std::isfinite(*parsed) && std::fabs(*parsed) < 9.2e18) return Value(static_cast<int64_t>(*parsed));
      if (std::isinf(*parsed)) throw RenderError("cannot convert float infinity to integer");
    }
  }
  return fallback;
}

Value f_items(Interpreter&, const Value& v, const Args& args) {
  bind("items", args, {});
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) throw RenderError("Can only get item pairs from a mapping.");
  std::vector<Value> pairs;
  for (const auto& [key, value] : v.dict().items()) pairs.push_back(Value::list({key, value}, true));
  return Value::list(std::move(pairs));
}

Value f_join(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("join", args, {"d", "attribute"});
  std::string separator = given(a[0]) ? a[0].to_string() : "";
  std::vector<Value> path;
  if (given(a[1]) && !a[1].is_none()) path = attribute_path(a[1]);
  std::string out;
  std::vector<Value> items = iterate(v);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += separator;
    out += (path.empty() ? items[i] : follow(items[i], path)).to_string();
    if (out.size() > kMaxStringBytes) throw RenderError("string longer than 64 MiB");
  }
  return Value(std::move(out));
}

Value f_list(Interpreter&, const Value& v, const Args& args) {
  bind("list", args, {});
  return Value::list(iterate(v));
}

Value f_lower(Interpreter&, const Value& v, const Args& args) {
  bind("lower", args, {});
  return Value(pystr::lower(v.to_string()));
}

Value f_upper(Interpreter&, const Value& v, const Args& args) {
  bind("upper", args, {});
  return Value(pystr::upper(v.to_string()));
}

// jinja2's title filter (not str.title): words start after '-', whitespace and opening brackets.
Value f_title(Interpreter&, const Value& v, const Args& args) {
  bind("title", args, {});
  std::u32string text = pystr::decode(v.to_string()), out;
  bool word_start = true;
  for (char32_t c : text) {
    bool separator = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || pystr::is_space(c);
    if (separator) {
      out.push_back(c);
      word_start = true;
    } else if (word_start) {
      if (c == 0xDF) {
        out += U"SS";
      } else {
        out.push_back(pystr::to_upper(c));
      }
      word_start = false;
    } else {
      out += pystr::decode(pystr::lower(pystr::encode(std::u32string(1, c))));
    }
  }
  return Value(pystr::encode(out));
}

Value f_trim(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("trim", args, {"chars"});
  std::string text = v.to_string();
  charge_text(text);
  return Value(pystr::strip(text, optional_string(a[0], "trim chars"), true, true));
}

Value f_replace(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("replace", args, {"old", "new", "count"}, 2);
  int64_t count = given(a[2]) && !a[2].is_none() ? integer(a[2], "replace count") : -1;
  std::string text = v.to_string();
  charge_text(text);
  return Value(pystr::replace(text, a[0].to_string(), a[1].to_string(), count));
}

Value f_string(Interpreter&, const Value& v, const Args& args) {
  bind("string", args, {});
  return Value(v.to_string());
}

Value f_map(Interpreter& interpreter, const Value& v, const Args& args) {
  std::vector<Value> items = iterate(v), out;
  if (args.positional.empty()) {
    Value attribute, fallback;
    for (const auto& [key, value] : args.keywords) {
      if (key == "attribute") {
        attribute = value;
      } else if (key == "default") {
        fallback = value;
      } else {
        throw RenderError("Unexpected keyword argument '" + key + "'");
      }
    }
    if (!given(attribute)) throw RenderError("map requires a filter argument");
    std::vector<Value> path = attribute_path(attribute);
    for (const Value& item : items) {
      Value mapped = follow(item, path);
      out.push_back(mapped.is_undefined() && given(fallback) ? fallback : mapped);
    }
    return Value::list(std::move(out));
  }
  const std::string& filter = string_arg(args.positional[0], "map filter name");
  if (!has_filter(filter)) throw RenderError("unknown filter '" + filter + "'");
  Args rest{std::vector<Value>(args.positional.begin() + 1, args.positional.end()), args.keywords};
  for (const Value& item : items) out.push_back(apply_filter(interpreter, filter, item, rest));
  return Value::list(std::move(out));
}

// select / reject / selectattr / rejectattr: keep items whose (attribute's) test result is `keep`.
Value select_items(Interpreter& interpreter, const Value& v, const Args& args, bool by_attribute, bool keep) {
  const char* name = by_attribute ? (keep ? "selectattr" : "rejectattr") : (keep ? "select" : "reject");
  size_t offset = by_attribute ? 1 : 0;
  if (by_attribute && args.positional.empty()) throw RenderError(std::string(name) + ": missing attribute");
  std::vector<Value> path = by_attribute ? attribute_path(args.positional[0]) : std::vector<Value>{};
  std::string test;
  Args rest;
  if (args.positional.size() > offset) {
    test = string_arg(args.positional[offset], std::string(name) + " test name");
    if (!has_test(test)) throw RenderError("unknown test '" + test + "'");
    rest.positional.assign(args.positional.begin() + offset + 1, args.positional.end());
    rest.keywords = args.keywords;
  }
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    Value subject = by_attribute ? follow(item, path) : item;
    bool passed = test.empty() ? subject.truthy() : apply_test(interpreter, test, subject, rest);
    if (passed == keep) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_select(Interpreter& i, const Value& v, const Args& a) { return select_items(i, v, a, false, true); }
Value f_reject(Interpreter& i, const Value& v, const Args& a) { return select_items(i, v, a, false, false); }
Value f_selectattr(Interpreter& i, const Value& v, const Args& a) { return select_items(i, v, a, true, true); }
Value f_rejectattr(Interpreter& i, const Value& v, const Args& a) { return select_items(i, v, a, true, false); }

Value extreme(const Value& v, const Args& args, bool want_max) {
  auto a = bind(want_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  KeyMaker maker(a[1], flag(a[0], false));
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = maker.key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = maker.key(items[i]);
    if (compare(want_max ? CompareOp::kGt : CompareOp::kLt, key, best_key)) {
      best = i;
      best_key = key;
    }
  }
  return items[best];
}

Value f_max(Interpreter&, const Value& v, const Args& args) { return extreme(v, args, true); }
Value f_min(Interpreter&, const Value& v, const Args& args) { return extreme(v, args, false); }

Value f_reverse(Interpreter&, const Value& v, const Args& args) {
  bind("reverse", args, {});
  if (v.is_string()) {
    std::u32string text = pystr::decode(v.str());
    std::reverse(text.begin(), text.end());
    return Value(pystr::encode(text));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

// Python's round(x, ndigits): round-half-even on the exact binary value, which glibc's printf also does.
double round_decimal(double x, int64_t digits) {
  if (!std::isfinite(x)) return x;
  if (digits >= 0) {
    if (digits > 330) return x;
    char buf[400];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(digits), x);
    return std::strtod(buf, nullptr);
  }
  double scale = std::pow(10.0, static_cast<double>(-digits));
  return std::nearbyint(x / scale) * scale;
}

Value f_round(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("round", args, {"precision", "method"});
  int64_t precision = given(a[0]) ? integer(a[0], "round precision") : 0;
  std::string how = given(a[1]) ? string_arg(a[1], "round method") : "common";
  if (how != "common" && how != "ceil" && how != "floor") {
    throw RenderError("method must be common, ceil or floor");
  }
  if (v.is_undefined()) v.raise_undefined();
  if (!v.is_number()) throw RenderError("type " + v.type_name() + " doesn't define __round__ method");
  if (how == "common") {
    if (v.is_int() && precision >= 0) return Value(v.as_int());
    if (v.is_int()) return Value(static_cast<int64_t>(round_decimal(static_cast<double>(v.as_int()), precision)));
    return Value(round_decimal(v.as_float(), precision));
  }
  double scale = std::pow(10.0, static_cast<double>(precision));
  double scaled = v.as_float() * scale;
  return Value((how == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value f_safe(Interpreter&, const Value& v, const Args& args) {
  bind("safe", args, {});
  return Value(v.to_string());
}

Value f_sort(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("sort", args, {"reverse", "case_sensitive", "attribute"});
  return Value::list(sorted(iterate(v), KeyMaker(a[2], flag(a[1], false)), flag(a[0], false)));
}

Value f_sum(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("sum", args, {"attribute", "start"});
  std::vector<Value> path;
  if (given(a[0]) && !a[0].is_none()) path = attribute_path(a[0]);
  Value total = given(a[1]) ? a[1] : Value(0);
  for (const Value& item : iterate(v))
    total = arithmetic(BinaryOp::kAdd, total, path.empty() ? item : follow(item, path));
  return total;
}

// Hugging Face's tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
Value f_tojson(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonFormat format;
  format.ensure_ascii = flag(a[0], false);
  format.sort_keys = flag(a[3], false);
  if (given(a[1]) && !a[1].is_none()) {
    if (a[1].is_string()) {
      format.indent = a[1].str();
    } else {
      format.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(integer(a[1], "indent"), 0, 1000)), ' ');
    }
    format.item_separator = ",";
  }
  if (given(a[2]) && !a[2].is_none()) {
    if (!a[2].is_list() || a[2].list().items.size() != 2) throw RenderError("separators must be a pair of strings");
    format.item_separator = string_arg(a[2].list().items[0], "item separator");
    format.key_separator = string_arg(a[2].list().items[1], "key separator");
  }
  return Value(to_json(v, format));
}

Value f_unique(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("unique", args, {"case_sensitive", "attribute"});
  KeyMaker maker(a[1], flag(a[0], false));
  Dict seen;
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    Value key = maker.key(item);
    if (seen.find(key)) continue;
    seen.set(key, Value(true));
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_indent(Interpreter&, const Value& v, const Args& args) {
  auto a = bind("indent", args, {"width", "first", "blank"});
  if (v.is_undefined()) v.raise_undefined();
  if (!v.is_string()) throw RenderError("unsupported operand type(s) for +=: '" + v.type_name() + "' and 'str'");
  std::string indentation =
      given(a[0])
          ? (a[0].is_string()
                 ? a[0].str()
                 : std::string(static_cast<size_t>(std::clamp<int64_t>(integer(a[0], "indent width"), 0, 1000)), ' '))
          : std::string(4, ' ');
  charge_text(v.str());
  std::vector<std::string> lines = pystr::splitlines(v.str() + "\n");
  std::string out;
  if (flag(a[2], false)) {
    for (size_t i = 0; i < lines.size(); ++i) out += (i ? "\n" + indentation : "") + lines[i];
  } else {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) out += "\n" + (lines[i].empty() ? "" : indentation);
      out += lines[i];
    }
  }
  if (flag(a[1], false)) out = indentation + out;
  return Value(std::move(out));
}

const std::unordered_map<std::string, Filter>& filter_table() {
  static const std::unordered_map<std::string, Filter> kFilters = {
      {"abs", f_abs},
      {"capitalize", f_capitalize},
      {"count", f_length},
      {"d", f_default},
      {"default", f_default},
      {"dictsort", f_dictsort},
      {"e", f_escape},
      {"escape", f_escape},
      {"first", f_first},
      {"float", f_float},
      {"indent", f_indent},
      {"int", f_int},
      {"items", f_items},
      {"join", f_join},
      {"last", f_last},
      {"length", f_length},
      {"list", f_list},
      {"lower", f_lower},
      {"map", f_map},
      {"max", f_max},
      {"min", f_min},
      {"reject", f_reject},
      {"rejectattr", f_rejectattr},
      {"replace", f_replace},
      {"reverse", f_reverse},
      {"round", f_round},
      {"safe", f_safe},
      {"select", f_select},
      {"selectattr", f_selectattr},
      {"sort", f_sort},
      {"string", f_string},
      {"sum", f_sum},
      {"title", f_title},
      {"tojson", f_tojson},
      {"trim", f_trim},
      {"unique", f_unique},
      {"upper", f_upper},
  };
  return kFilters;
}

// ---------------------------------------------------------------- tests
Value test_arg(const std::string& test, const Args& args) { return bind(test, args, {"other"}, 1)[0]; }

bool t_defined(Interpreter&, const Value& v, const Args& args) {
  bind("defined", args, {});
  return !v.is_undefined();
}
bool t_undefined(Interpreter&, const Value& v, const Args& args) {
  bind("undefined", args, {});
  return v.is_undefined();
}
bool t_none(Interpreter&, const Value& v, const Args& args) {
  bind("none", args, {});
  return v.is_none();
}
bool t_string(Interpreter&, const Value& v, const Args& args) {
  bind("string", args, {});
  return v.is_string();
}
bool t_number(Interpreter&, const Value& v, const Args& args) {
  bind("number", args, {});
  return v.is_number();
}
bool t_integer(Interpreter&, const Value& v, const Args& args) {
  bind("integer", args, {});
  return v.type() == Value::Type::kInt;
}
bool t_float(Interpreter&, const Value& v, const Args& args) {
  bind("float", args, {});
  return v.type() == Value::Type::kFloat;
}
bool t_boolean(Interpreter&, const Value& v, const Args& args) {
  bind("boolean", args, {});
  return v.type() == Value::Type::kBool;
}
bool t_true(Interpreter&, const Value& v, const Args& args) {
  bind("true", args, {});
  return v.type() == Value::Type::kBool && v.as_bool();
}
bool t_false(Interpreter&, const Value& v, const Args& args) {
  bind("false", args, {});
  return v.type() == Value::Type::kBool && !v.as_bool();
}
bool t_mapping(Interpreter&, const Value& v, const Args& args) {
  bind("mapping", args, {});
  return v.is_dict();
}
bool t_iterable(Interpreter&, const Value& v, const Args& args) {
  bind("iterable", args, {});
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict() ||
         (v.is_object() && v.object().type_name() == "LoopContext");
}
bool t_sequence(Interpreter&, const Value& v, const Args& args) {
  bind("sequence", args, {});
  return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
}
bool t_callable(Interpreter&, const Value& v, const Args& args) {
  bind("callable", args, {});
  return v.is_undefined() || (v.is_object() && v.object().callable());
}
bool t_even(Interpreter&, const Value& v, const Args& args) {
  bind("even", args, {});
  return equals(arithmetic(BinaryOp::kMod, v, Value(2)), Value(0));
}
bool t_odd(Interpreter&, const Value& v, const Args& args) {
  bind("odd", args, {});
  return equals(arithmetic(BinaryOp::kMod, v, Value(2)), Value(1));
}
bool t_divisibleby(Interpreter&, const Value& v, const Args& args) {
  Value n = bind("divisibleby", args, {"num"}, 1)[0];
  return equals(arithmetic(BinaryOp::kMod, v, n), Value(0));
}
bool t_eq(Interpreter&, const Value& v, const Args& a) { return compare(CompareOp::kEq, v, test_arg("eq", a)); }
bool t_ne(Interpreter&, const Value& v, const Args& a) { return compare(CompareOp::kNe, v, test_arg("ne", a)); }
bool t_lt(Interpreter&, const Value& v, const Args& a) { return compare(CompareOp::kLt, v, test_arg("lt", a)); }
bool t_le(Interpreter&, const Value& v, const Args& a) { return compare(CompareOp::kLe, v, test_arg("le", a)); }
bool t_gt(Interpreter&, const Value& v, const Args& a) { return compare(CompareOp::kGt, v, test_arg("gt", a)); }
bool t_ge(Interpreter&, const Value& v, const Args& a) { return compare(CompareOp::kGe, v, test_arg("ge", a)); }
bool t_in(Interpreter&, const Value& v, const Args& args) {
  return compare(CompareOp::kIn, v, bind("in", args, {"seq"}, 1)[0]);
}
bool t_lower(Interpreter&, const Value& v, const Args& args) {
  bind("lower", args, {});
  return pystr::is_lower(v.to_string());
}
bool t_upper(Interpreter&, const Value& v, const Args& args) {
  bind("upper", args, {});
  return pystr::is_upper(v.to_string());
}
// `is` identity, as far as it is observable: None, booleans and small ints are singletons in CPython; lists, dicts
// and objects are the same object when they share storage.
bool t_sameas(Interpreter&, const Value& v, const Args& args) {
  Value other = test_arg("sameas", args);
  if (v.type() != other.type()) return false;
  switch (v.type()) {
    case Value::Type::kNone:
      return true;
    case Value::Type::kBool:
      return v.as_bool() == other.as_bool();
    case Value::Type::kInt:
      return v.as_int() == other.as_int() && v.as_int() >= -5 && v.as_int() <= 256;
    case Value::Type::kList:
      return &v.list() == &other.list();
    case Value::Type::kDict:
      return &v.dict() == &other.dict();
    case Value::Type::kObject:
      return v.object_ptr() == other.object_ptr();
    default:
      return false;
  }
}
bool t_escaped(Interpreter&, const Value&, const Args& args) {
  bind("escaped", args, {});
  return false;
}

const std::unordered_map<std::string, Test>& test_table() {
  static const std::unordered_map<std::string, Test> kTests = {
      {"defined", t_defined},
      {"undefined", t_undefined},
      {"none", t_none},
      {"string", t_string},
      {"number", t_number},
      {"integer", t_integer},
      {"float", t_float},
      {"boolean", t_boolean},
      {"true", t_true},
      {"false", t_false},
      {"mapping", t_mapping},
      {"iterable", t_iterable},
      {"sequence", t_sequence},
      {"callable", t_callable},
      {"even", t_even},
      {"odd", t_odd},
      {"divisibleby", t_divisibleby},
      {"eq", t_eq},
      {"equalto", t_eq},
      {"==", t_eq},
      {"ne", t_ne},
      {"!=", t_ne},
      {"lt", t_lt},
      {"lessthan", t_lt},
      {"<", t_lt},
      {"le", t_le},
      {"<=", t_le},
      {"gt", t_gt},
      {"greaterthan", t_gt},
      {">", t_gt},
      {"ge", t_ge},
      {">=", t_ge},
      {"in", t_in},
      {"lower", t_lower},
      {"upper", t_upper},
      {"sameas", t_sameas},
      {"escaped", t_escaped},
  };
  return kTests;
}

}  // namespace

bool has_filter(const std::string& name) { return filter_table().count(name) != 0; }
bool has_test(const std::string& name) { return test_table().count(name) != 0; }

Value apply_filter(Interpreter& interpreter, const std::string& name, const Value& subject, const Args& args) {
  auto it = filter_table().find(name);
  if (it == filter_table().end()) throw RenderError("unknown filter '" + name + "'");
  charge_work(1);
  return it->second(interpreter, subject, args);
}

bool apply_test(Interpreter& interpreter, const std::string& name, const Value& subject, const Args& args) {
  auto it = test_table().find(name);
  if (it == test_table().end()) throw RenderError("unknown test '" + name + "'");
  charge_work(1);
  return it->second(interpreter, subject, args);
}

}  // namespace peft::jinja
