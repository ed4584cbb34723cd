#include "io/jinja/builtins.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "io/jinja/evaluator.h"
#include "io/jinja/pystr.h"

namespace peft::jinja {

bool given(const Value& v) { return !v.is_undefined(); }

bool flag(const Value& v, bool fallback) { return given(v) ? v.truthy() : fallback; }

int64_t integer(const Value& v, const std::string& what) {
  if (!v.is_int()) {
    throw RenderError("'" + v.type_name() + "' object cannot be interpreted as an integer (" + what + ")");
  }
  return v.as_int();
}

std::optional<std::string> optional_string(const Value& v, const std::string& what) {
  if (!given(v) || v.is_none()) return std::nullopt;
  if (!v.is_string()) throw RenderError(what + " must be str or None, not " + v.type_name());
  return v.str();
}

const std::string& string_arg(const Value& v, const std::string& what) {
  if (!v.is_string()) throw RenderError(what + " must be str, not " + v.type_name());
  return v.str();
}

namespace {

Value string_list(const std::vector<std::string>& parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (const auto& part : parts) items.emplace_back(part);
  return Value::list(std::move(items));
}

// Charges the work of reading a string argument (decoding, searching) to the render's budget.
void charge_text(const std::string& s) { charge_work(1 + s.size() / 64); }

std::vector<Value> bind(const std::string& function, const Args& args, const std::vector<std::string>& params,
                        size_t required = 0) {
  return bind_args(function, args, params, required);
}

// ---------------------------------------------------------------- lookup
// jinja2's object_type_repr: how an Undefined names the object it was looked up on.
std::string object_type(const Value& v) { return v.is_none() ? "None" : v.type_name() + " object"; }

Value missing_attribute(const Value& object, const std::string& name) {
  return Value::undefined("'" + object_type(object) + "' has no attribute '" + name + "'");
}

Value unsafe(const Value& object, const std::string& name) {
  return Value::undefined("access to attribute '" + name + "' of '" + object.type_name() + "' object is unsafe.");
}

Value method(const std::string& name, Function::Body body) {
  return Value::object(std::make_shared<Function>(name, std::move(body)));
}

Value unsupported_method(const Value& object, const std::string& name) {
  std::string what = object.type_name() + "." + name + "()";
  return method(name, [what](Interpreter&, const Args&) -> Value {
    throw RenderError(what + " is not supported by this template interpreter");
  });
}

Value string_method(const std::string& self, const std::string& name, const Args& args);

bool is_str_method(const std::string& name) {
  static const std::vector<std::string> kNames = {
      "capitalize", "casefold",     "center",       "count",   "encode",     "endswith",    "expandtabs",
      "find",       "format",       "format_map",   "index",   "isalnum",    "isalpha",     "isascii",
      "isdecimal",  "isdigit",      "isidentifier", "islower", "isnumeric",  "isprintable", "isspace",
      "istitle",    "isupper",      "join",         "ljust",   "lower",      "lstrip",      "maketrans",
      "partition",  "removeprefix", "removesuffix", "replace", "rfind",      "rindex",      "rjust",
      "rpartition", "rsplit",       "rstrip",       "split",   "splitlines", "startswith",  "strip",
      "swapcase",   "title",        "translate",    "upper",   "zfill"};
  return std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

std::optional<Value> dict_method(const Value& self, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values") {
    return method(name, [self, name](Interpreter&, const Args& args) {
      bind("dict." + name, args, {});
      std::vector<Value> out;
      for (const auto& [key, value] : self.dict().items()) {
        out.push_back(name == "items" ? Value::list({key, value}, true) : name == "keys" ? key : value);
      }
      return Value::list(std::move(out));
    });
  }
  if (name == "get") {
    return method(name, [self](Interpreter&, const Args& args) {
      auto a = bind("dict.get", args, {"key", "default"}, 1);
      const Value* found = self.dict().find(a[0]);
      return found ? *found : given(a[1]) ? a[1] : Value::none();
    });
  }
  if (name == "copy") return method(name, [self](Interpreter&, const Args&) { return self; });
  if (name == "clear" || name == "pop" || name == "popitem" || name == "setdefault" || name == "update") {
    return unsafe(self, name);
  }
  if (name == "fromkeys") return unsupported_method(self, name);
  return std::nullopt;
}

std::optional<Value> list_method(const Value& self, const std::string& name) {
  if (name == "count" || name == "index") {
    return method(name, [self, name](Interpreter&, const Args& args) {
      auto a = bind("list." + name, args, {"value"}, 1);
      const auto& items = self.list().items;
      charge_work(items.size());
      int64_t count = 0;
      for (size_t i = 0; i < items.size(); ++i) {
        if (!equals(items[i], a[0])) continue;
        if (name == "index") return Value(static_cast<int64_t>(i));
        ++count;
      }
      if (name == "index") throw RenderError(a[0].repr() + " is not in list");
      return Value(count);
    });
  }
  if (self.is_tuple()) return std::nullopt;
  if (name == "copy") return method(name, [self](Interpreter&, const Args&) { return self; });
  static const std::vector<std::string> kMutating = {"append", "clear",  "extend",  "insert",
                                                     "pop",    "remove", "reverse", "sort"};
  if (std::find(kMutating.begin(), kMutating.end(), name) != kMutating.end()) return unsafe(self, name);
  return std::nullopt;
}

// Python's getattr(obj, name) under the sandbox; nullopt when obj has no such attribute.
std::optional<Value> python_attribute(const Value& object, const std::string& name) {
  switch (object.type()) {
    case Value::Type::kString:
      if (!is_str_method(name)) return std::nullopt;
      return method(name, [self = object.str(), name](Interpreter&, const Args& args) {
        return string_method(self, name, args);
      });
    case Value::Type::kDict:
      return dict_method(object, name);
    case Value::Type::kList:
      return list_method(object, name);
    case Value::Type::kObject:
      return object.object().attribute(name);
    default:
      return std::nullopt;
  }
}

// ---------------------------------------------------------------- slicing
// CPython's PySlice_AdjustIndices: the positions a slice selects from a sequence of `length` items.
std::vector<int64_t> slice_positions(int64_t length, const Value& start_v, const Value& stop_v, const Value& step_v) {
  auto bound = [](const Value& v, int64_t fallback) {
    if (v.is_none()) return fallback;
    if (v.is_undefined()) v.raise_undefined();
    if (!v.is_int()) throw RenderError("slice indices must be integers or None or have an __index__ method");
    return v.as_int();
  };
  int64_t step = bound(step_v, 1);
  if (step == 0) throw RenderError("slice step cannot be zero");
  int64_t start = bound(start_v, step < 0 ? INT64_MAX : 0);
  int64_t stop = bound(stop_v, step < 0 ? INT64_MIN : INT64_MAX);
  auto adjust = [&](int64_t& i) {
    if (i < 0) {
      i = i < -length ? (step < 0 ? -1 : 0) : i + length;
    } else if (i >= length) {
      i = step < 0 ? length - 1 : length;
    }
  };
  adjust(start);
  adjust(stop);
  std::vector<int64_t> positions;
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) {
      positions.push_back(i);
      if (stop - i <= step) break;
    }
  } else {
    for (int64_t i = start; i > stop; i += step) {
      positions.push_back(i);
      if (i - stop <= -step) break;
    }
  }
  return positions;
}

// ---------------------------------------------------------------- str methods
Value string_method(const std::string& self, const std::string& name, const Args& args) {
  charge_text(self);
  std::string fn = "str." + name;
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    bind(fn, args, {});
    if (name == "upper") return Value(pystr::upper(self));
    if (name == "lower") return Value(pystr::lower(self));
    if (name == "title") return Value(pystr::title(self));
    return Value(pystr::capitalize(self));
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    auto a = bind(fn, args, {"chars"});
    return Value(pystr::strip(self, optional_string(a[0], fn + " arg"), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    auto a = bind(fn, args, {"sep", "maxsplit"});
    auto sep = optional_string(a[0], fn + " sep");
    if (sep && sep->empty()) throw RenderError("empty separator");
    int64_t maxsplit = given(a[1]) ? integer(a[1], "maxsplit") : -1;
    return string_list(name == "split" ? pystr::split(self, sep, maxsplit) : pystr::rsplit(self, sep, maxsplit));
  }
  if (name == "splitlines") {
    auto a = bind(fn, args, {"keepends"});
    if (flag(a[0], false)) throw RenderError("str.splitlines(keepends=True) is not supported");
    return string_list(pystr::splitlines(self));
  }
  if (name == "startswith" || name == "endswith") {
    auto a = bind(fn, args, {"prefix", "start", "end"}, 1);
    std::string text = self;
    if (given(a[1]) || given(a[2])) {
      Value part =
          get_slice(Value(self), given(a[1]) ? a[1] : Value::none(), given(a[2]) ? a[2] : Value::none(), Value::none());
      text = part.str();
    }
    std::vector<Value> candidates = a[0].is_tuple() ? a[0].list().items : std::vector<Value>{a[0]};
    for (const Value& candidate : candidates) {
      const std::string& affix = string_arg(candidate, fn + " first arg");
      bool hit = name == "startswith" ? text.compare(0, affix.size(), affix) == 0 && text.size() >= affix.size()
                                      : text.size() >= affix.size() &&
                                            text.compare(text.size() - affix.size(), affix.size(), affix) == 0;
      if (hit) return Value(true);
    }
    return Value(false);
  }
  if (name == "replace") {
    auto a = bind(fn, args, {"old", "new", "count"}, 2);
    int64_t count = given(a[2]) ? integer(a[2], "count") : -1;
    return Value(pystr::replace(self, string_arg(a[0], fn + " old"), string_arg(a[1], fn + " new"), count));
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    auto a = bind(fn, args, {"sub", "start", "end"}, 1);
    const std::string& sub = string_arg(a[0], fn + " sub");
    auto position = [&](const Value& v) -> std::optional<int64_t> {
      if (!given(v) || v.is_none()) return std::nullopt;
      return integer(v, fn);
    };
    if (name == "count") {
      if (given(a[1]) || given(a[2])) {
        Value part = get_slice(Value(self), given(a[1]) ? a[1] : Value::none(), given(a[2]) ? a[2] : Value::none(),
                               Value::none());
        return Value(pystr::count(part.str(), sub));
      }
      return Value(pystr::count(self, sub));
    }
    bool reverse = name == "rfind" || name == "rindex";
    int64_t at = pystr::find(self, sub, position(a[1]), position(a[2]), reverse);
    if (at < 0 && (name == "index" || name == "rindex")) throw RenderError("substring not found");
    return Value(at);
  }
  if (name == "join") {
    auto a = bind(fn, args, {"iterable"}, 1);
    std::string out;
    std::vector<Value> items = iterate(a[0]);
    for (size_t i = 0; i < items.size(); ++i) {
      if (!items[i].is_string()) {
        throw RenderError("sequence item " + std::to_string(i) + ": expected str instance, " + items[i].type_name() +
                          " found");
      }
      if (i) out += self;
      out += items[i].str();
      if (out.size() > kMaxStringBytes) throw RenderError("string longer than 64 MiB");
    }
    return Value(std::move(out));
  }
  if (name == "removeprefix" || name == "removesuffix") {
    auto a = bind(fn, args, {"affix"}, 1);
    const std::string& affix = string_arg(a[0], fn + " arg");
    if (name == "removeprefix")
      return Value(self.compare(0, affix.size(), affix) == 0 ? self.substr(affix.size()) : self);
    bool ends = self.size() >= affix.size() && self.compare(self.size() - affix.size(), affix.size(), affix) == 0;
    return Value(ends ? self.substr(0, self.size() - affix.size()) : self);
  }
  if (name.rfind("is", 0) == 0 && name != "isidentifier" && name != "istitle" && name != "isprintable") {
    bind(fn, args, {});
    if (name == "islower") return Value(pystr::is_lower(self));
    if (name == "isupper") return Value(pystr::is_upper(self));
    std::u32string text = pystr::decode(self);
    if (name == "isascii") return Value(std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; }));
    if (text.empty()) return Value(false);
    return Value(std::all_of(text.begin(), text.end(), [&](char32_t c) {
      if (name == "isspace") return pystr::is_space(c);
      if (name == "isalpha") return pystr::is_alpha(c);
      if (name == "isalnum") return pystr::is_alpha(c) || pystr::is_digit(c);
      return pystr::is_digit(c);  // isdigit, isdecimal, isnumeric
    }));
  }
  throw RenderError("str." + name + "() is not supported by this template interpreter");
}

// ---------------------------------------------------------------- globals
Value g_range(Interpreter&, const Args& args) {
  if (!args.keywords.empty()) throw RenderError("range() takes no keyword arguments");
  size_t n = args.positional.size();
  if (n < 1 || n > 3) throw RenderError("range expected 1 to 3 arguments, got " + std::to_string(n));
  int64_t start = 0, stop, step = 1;
  if (n == 1) {
    stop = integer(args.positional[0], "range");
  } else {
    start = integer(args.positional[0], "range");
    stop = integer(args.positional[1], "range");
    if (n == 3) step = integer(args.positional[2], "range");
  }
  if (step == 0) throw RenderError("range() arg 3 must not be zero");
  long double count =
      step > 0 ? (static_cast<long double>(stop) - start) / step : (static_cast<long double>(start) - stop) / -step;
  if (std::ceil(count) > kMaxRange) {
    throw RenderError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  }
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.emplace_back(i);
  return Value::list(std::move(items));
}

// dict(mapping or pairs, **kwargs), the arguments of dict() and namespace().
Dict dict_from(const std::string& function, const Args& args) {
  if (args.positional.size() > 1) {
    throw RenderError(function + " expected at most 1 argument, got " + std::to_string(args.positional.size()));
  }
  Dict dict;
  if (!args.positional.empty()) {
    const Value& source = args.positional[0];
    if (source.is_dict()) {
      for (const auto& [key, value] : source.dict().items()) dict.set(key, value);
    } else {
      for (const Value& pair : iterate(source)) {
        std::vector<Value> kv = iterate(pair);
        if (kv.size() != 2)
          throw RenderError("dictionary update sequence element has length " + std::to_string(kv.size()) +
                            "; 2 is required");
        dict.set(kv[0], kv[1]);
      }
    }
  }
  for (const auto& [key, value] : args.keywords) dict.set(Value(key), value);
  return dict;
}

Value g_dict(Interpreter&, const Args& args) { return Value::dict(dict_from("dict", args)); }

Value g_namespace(Interpreter& interpreter, const Args& args) {
  auto ns = std::make_shared<Namespace>();
  Dict dict = dict_from("namespace", args);
  for (const auto& [key, value] : dict.items()) {
    if (!key.is_string()) throw RenderError("namespace() keywords must be strings");
    ns->attributes.set(key, value);
  }
  interpreter.track_namespace(ns);
  return Value::object(ns);
}

Value g_raise_exception(Interpreter&, const Args& args) {
  auto a = bind("raise_exception", args, {"message"}, 1);
  throw RaisedException(a[0].to_string());
}

// strftime with the C locale's names, for the directives chat templates use.
std::string format_time(const std::tm& t, const std::string& format) {
  static const char* const kDays[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
  static const char* const kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                                        "July",    "August",   "September", "October", "November", "December"};
  std::string out;
  char buf[32];
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%' || i + 1 == format.size()) {
      out.push_back(format[i]);
      continue;
    }
    bool no_pad = format[i + 1] == '-' && i + 2 < format.size();
    char d = format[i + (no_pad ? 2 : 1)];
    i += no_pad ? 2 : 1;
    auto number = [&](int value, int width) {
      std::snprintf(buf, sizeof(buf), "%0*d", no_pad ? 1 : width, value);
      out += buf;
    };
    switch (d) {
      case 'a':
        out += std::string(kDays[t.tm_wday]).substr(0, 3);
        break;
      case 'A':
        out += kDays[t.tm_wday];
        break;
      case 'b':
      case 'h':
        out += std::string(kMonths[t.tm_mon]).substr(0, 3);
        break;
      case 'B':
        out += kMonths[t.tm_mon];
        break;
      case 'd':
        number(t.tm_mday, 2);
        break;
      case 'e':
        std::snprintf(buf, sizeof(buf), "%2d", t.tm_mday);
        out += buf;
        break;
      case 'H':
        number(t.tm_hour, 2);
        break;
      case 'I':
        number(t.tm_hour % 12 == 0 ? 12 : t.tm_hour % 12, 2);
        break;
      case 'j':
        number(t.tm_yday + 1, 3);
        break;
      case 'm':
        number(t.tm_mon + 1, 2);
        break;
      case 'M':
        number(t.tm_min, 2);
        break;
      case 'p':
        out += t.tm_hour < 12 ? "AM" : "PM";
        break;
      case 'S':
        number(t.tm_sec, 2);
        break;
      case 'u':
        number(t.tm_wday == 0 ? 7 : t.tm_wday, 1);
        break;
      case 'w':
        number(t.tm_wday, 1);
        break;
      case 'y':
        number(t.tm_year % 100, 2);
        break;
      case 'Y':
        number(t.tm_year + 1900, 4);
        break;
      case 'Z':
      case 'z':
        break;  // a naive datetime has no zone: Python prints nothing
      case '%':
        out.push_back('%');
        break;
      default:
        throw RenderError(std::string("strftime_now: unsupported directive %") + (no_pad ? "-" : "") + d);
    }
  }
  return out;
}

std::tm fixed_time(const std::string& text) {
  std::tm t{};
  int year, month, day, hour, minute, second;
  char tail;
  if (std::sscanf(text.c_str(), "%d-%d-%d %d:%d:%d%c", &year, &month, &day, &hour, &minute, &second, &tail) != 6 ||
      month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
      second < 0 || second > 60) {
    throw RenderError("strftime_now_date must be \"YYYY-MM-DD HH:MM:SS\", got \"" + text + "\"");
  }
  t.tm_year = year - 1900;
  t.tm_mon = month - 1;
  t.tm_mday = day;
  t.tm_hour = hour;
  t.tm_min = minute;
  t.tm_sec = second;
  // Weekday (Sakamoto) and day of the year from the civil date.
  static const int kOffsets[] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
  int y = month < 3 ? year - 1 : year;
  t.tm_wday = (y + y / 4 - y / 100 + y / 400 + kOffsets[month - 1] + day) % 7;
  static const int kDaysBefore[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  t.tm_yday = kDaysBefore[month - 1] + day - 1 + (leap && month > 2 ? 1 : 0);
  return t;
}

Value g_strftime_now(Interpreter& interpreter, const Args& args) {
  auto a = bind("strftime_now", args, {"format"}, 1);
  const std::string& format = string_arg(a[0], "strftime_now format");
  std::tm t{};
  const std::string& fixed = interpreter.options().strftime_now_date;
  if (!fixed.empty()) {
    t = fixed_time(fixed);
  } else {
    std::time_t now = std::time(nullptr);
    localtime_r(&now, &t);
  }
  return Value(format_time(t, format));
}
}  // namespace

std::vector<Value> bind_args(const std::string& function, const Args& args, const std::vector<std::string>& params,
                             size_t required) {
  if (args.positional.size() > params.size()) {
    throw RenderError(function + "() takes at most " + std::to_string(params.size()) + " argument(s) (" +
                      std::to_string(args.positional.size()) + " given)");
  }
  std::vector<Value> bound(params.size());
  std::vector<bool> set(params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    bound[i] = args.positional[i];
    set[i] = true;
  }
  for (const auto& [key, value] : args.keywords) {
    auto it = std::find(params.begin(), params.end(), key);
    if (it == params.end()) throw RenderError(function + "() got an unexpected keyword argument '" + key + "'");
    size_t index = static_cast<size_t>(it - params.begin());
    if (set[index]) throw RenderError(function + "() got multiple values for argument '" + key + "'");
    bound[index] = value;
    set[index] = true;
  }
  for (size_t i = 0; i < required; ++i) {
    if (!set[i]) throw RenderError(function + "() missing required argument '" + params[i] + "'");
  }
  return bound;
}

Value get_attribute(const Value& object, const std::string& name) {
  if (object.is_undefined()) object.raise_undefined();
  if (auto attribute = python_attribute(object, name)) return *attribute;
  if (object.is_dict()) {
    if (const Value* item = object.dict().find(Value(name))) return *item;
  }
  return missing_attribute(object, name);
}

Value get_item(const Value& object, const Value& key) {
  if (object.is_undefined()) object.raise_undefined();
  bool unhashable = (key.is_list() && !key.is_tuple()) || key.is_dict();  // Python's TypeError: no such item
  if (object.is_dict() && !unhashable) {
    if (const Value* item = object.dict().find(key)) return *item;
  } else if ((object.is_list() || object.is_string()) && key.is_int()) {
    int64_t n = object.is_list() ? static_cast<int64_t>(object.list().items.size()) : length(object);
    int64_t i = key.as_int() < 0 ? key.as_int() + n : key.as_int();
    if (i >= 0 && i < n) {
      if (object.is_list()) return object.list().items[static_cast<size_t>(i)];
      if (pystr::is_ascii(object.str())) return Value(object.str().substr(static_cast<size_t>(i), 1));
      return Value(pystr::encode(std::u32string(1, pystr::decode(object.str())[static_cast<size_t>(i)])));
    }
  }
  if (key.is_string()) {  // jinja2 falls back to the attribute: obj['items'] is the dict's items method
    if (auto attribute = python_attribute(object, key.str())) return *attribute;
    return missing_attribute(object, key.str());
  }
  return Value::undefined(object_type(object) + " has no element " + key.repr());
}

Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  if (object.is_undefined()) object.raise_undefined();
  if (object.is_list()) {
    const auto& items = object.list().items;
    std::vector<Value> out;
    for (int64_t i : slice_positions(static_cast<int64_t>(items.size()), start, stop, step)) out.push_back(items[i]);
    return Value::list(std::move(out), object.is_tuple());
  }
  if (object.is_string()) {
    charge_text(object.str());
    std::u32string text = pystr::decode(object.str()), out;
    for (int64_t i : slice_positions(static_cast<int64_t>(text.size()), start, stop, step)) out.push_back(text[i]);
    return Value(pystr::encode(out));
  }
  return Value::undefined("'" + object.type_name() + "' object is not subscriptable with a slice");
}

void add_globals(std::unordered_map<std::string, Value>& variables) {
  variables["range"] = method("range", g_range);
  variables["dict"] = method("dict", g_dict);
  variables["namespace"] = method("namespace", g_namespace);
  variables["raise_exception"] = method("raise_exception", g_raise_exception);
  variables["strftime_now"] = method("strftime_now", g_strftime_now);
}

}  // namespace peft::jinja
