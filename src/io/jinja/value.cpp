#include "io/jinja/value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "io/jinja/pystr.h"

namespace peft::jinja {
namespace {

thread_local WorkBudget* active_budget = nullptr;

[[noreturn]] void overflow() { throw RenderError("integer overflow: results past 64 bits are not supported"); }

void check_size(size_t bytes) {
  if (bytes > kMaxStringBytes) {
    throw RenderError("string longer than " + std::to_string(kMaxStringBytes >> 20) + " MiB");
  }
}

// Python's hash equality for dict keys: equal numbers share a key whatever their type.
std::string hash_key(const Value& key) {
  switch (key.type()) {
    case Value::Type::kString:
      return "s" + key.str();
    case Value::Type::kBool:
    case Value::Type::kInt:
      return "i" + std::to_string(key.as_int());
    case Value::Type::kFloat: {
      double d = key.as_float();
      if (std::trunc(d) == d && std::fabs(d) < 9.2e18) return "i" + std::to_string(static_cast<int64_t>(d));
      return "f" + pystr::float_repr(d);
    }
    case Value::Type::kNone:
      return "n";
    case Value::Type::kUndefined:
      return "u";
    case Value::Type::kObject: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "o%p", static_cast<const void*>(key.object_ptr().get()));
      return buf;
    }
    case Value::Type::kList:
      if (key.is_tuple()) {
        std::string out = "t";
        for (const Value& item : key.list().items) {
          std::string part = hash_key(item);
          out += std::to_string(part.size()) + ":" + part;
        }
        return out;
      }
      break;
    case Value::Type::kDict:
      break;
  }
  throw RenderError("unhashable type: '" + key.type_name() + "'");
}

// Dicts being printed, so that a namespace holding itself prints "{...}" as in Python.
thread_local std::vector<const Dict*> repr_in_progress;

std::string dict_repr(const Dict& dict) {
  if (std::find(repr_in_progress.begin(), repr_in_progress.end(), &dict) != repr_in_progress.end()) return "{...}";
  if (repr_in_progress.size() >= static_cast<size_t>(kMaxDepth)) throw RenderError("value nested too deeply to print");
  repr_in_progress.push_back(&dict);
  std::string out = "{";
  try {
    for (size_t i = 0; i < dict.items().size(); ++i) {
      if (i) out += ", ";
      out += dict.items()[i].first.repr() + ": " + dict.items()[i].second.repr();
      check_size(out.size());
    }
  } catch (...) {
    repr_in_progress.pop_back();
    throw;
  }
  repr_in_progress.pop_back();
  return out + "}";
}

bool both_int(const Value& a, const Value& b) { return a.is_int() && b.is_int(); }

// int == float compared exactly, as Python does (long double holds every int64).
int compare_numbers(const Value& a, const Value& b) {
  if (both_int(a, b)) return a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
  long double x = a.is_int() ? static_cast<long double>(a.as_int()) : a.as_float();
  long double y = b.is_int() ? static_cast<long double>(b.as_int()) : b.as_float();
  if (x < y) return -1;
  if (x > y) return 1;
  return x == y ? 0 : 2;  // 2: unordered (NaN)
}

const char* op_symbol(CompareOp op) {
  switch (op) {
    case CompareOp::kLt:
      return "<";
    case CompareOp::kLe:
      return "<=";
    case CompareOp::kGt:
      return ">";
    default:
      return ">=";
  }
}

bool order_holds(CompareOp op, int c) {
  if (c == 2) return false;
  switch (op) {
    case CompareOp::kLt:
      return c < 0;
    case CompareOp::kLe:
      return c <= 0;
    case CompareOp::kGt:
      return c > 0;
    default:
      return c >= 0;
  }
}

bool ordered(CompareOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) a.raise_undefined();
  if (b.is_undefined()) b.raise_undefined();
  if (a.is_number() && b.is_number()) return order_holds(op, compare_numbers(a, b));
  if (a.is_string() && b.is_string()) {
    int c = a.str().compare(b.str());
    return order_holds(op, c < 0 ? -1 : c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.list().items;
    const auto& y = b.list().items;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equals(x[i], y[i])) return ordered(op, x[i], y[i]);
    }
    return order_holds(op, x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0);
  }
  throw RenderError(std::string("'") + op_symbol(op) + "' not supported between instances of '" + a.type_name() +
                    "' and '" + b.type_name() + "'");
}

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) overflow();
  return r;
}
int64_t checked_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) overflow();
  return r;
}
int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) overflow();
  return r;
}

[[noreturn]] void unsupported(const char* symbol, const Value& a, const Value& b) {
  throw RenderError(std::string("unsupported operand type(s) for ") + symbol + ": '" + a.type_name() + "' and '" +
                    b.type_name() + "'");
}

Value repeat(const Value& seq, int64_t times) {
  times = std::max<int64_t>(times, 0);
  if (seq.is_string()) {
    if (times > 0 && seq.str().size() > kMaxStringBytes / static_cast<size_t>(times)) check_size(kMaxStringBytes + 1);
    std::string out;
    for (int64_t i = 0; i < times; ++i) out += seq.str();
    return Value(std::move(out));
  }
  const auto& items = seq.list().items;
  if (times > 0 && items.size() > kMaxItems / static_cast<size_t>(times)) {
    throw RenderError("list longer than " + std::to_string(kMaxItems) + " items");
  }
  std::vector<Value> out;
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), items.begin(), items.end());
  return Value::list(std::move(out), seq.is_tuple());
}

Value power(const Value& a, const Value& b) {
  if (both_int(a, b) && b.as_int() >= 0) {
    int64_t base = a.as_int(), exponent = b.as_int(), result = 1;
    while (exponent > 0) {
      if (exponent & 1) result = checked_mul(result, base);
      exponent >>= 1;
      if (exponent) base = checked_mul(base, base);
    }
    return Value(result);
  }
  double x = a.as_float(), y = b.as_float();
  if (x == 0 && y < 0) throw RenderError("0.0 cannot be raised to a negative power");
  if (x < 0 && std::trunc(y) != y)
    throw RenderError("a negative number to a fractional power (complex) is not supported");
  double r = std::pow(x, y);
  if (std::isinf(r) && std::isfinite(x) && std::isfinite(y)) throw RenderError("float power overflow");
  return Value(r);
}

Value floor_divide(const Value& a, const Value& b, bool want_modulo) {
  if (both_int(a, b)) {
    int64_t x = a.as_int(), y = b.as_int();
    if (y == 0) throw RenderError("integer division or modulo by zero");
    if (x == INT64_MIN && y == -1) {
      if (want_modulo) return Value(0);
      overflow();
    }
    int64_t q = x / y, r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) {
      --q;
      r += y;
    }
    return want_modulo ? Value(r) : Value(q);
  }
  // CPython's float_divmod, so results match bit for bit.
  double x = a.as_float(), y = b.as_float();
  if (y == 0) throw RenderError(want_modulo ? "float modulo" : "float floor division by zero");
  double mod = std::fmod(x, y);
  double div = (x - mod) / y;
  if (mod != 0) {
    if ((y < 0) != (mod < 0)) {
      mod += y;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, y);
  }
  if (want_modulo) return Value(mod);
  double floordiv;
  if (div != 0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, x / y);
  }
  return Value(floordiv);
}

template <typename Json>
Value convert_json(const Json& json, int depth) {
  if (depth > kMaxDepth) throw RenderError("input nested deeper than " + std::to_string(kMaxDepth) + " levels");
  switch (json.type()) {
    case nlohmann::json::value_t::null:
      return Value::none();
    case nlohmann::json::value_t::boolean:
      return Value(json.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(json.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      uint64_t u = json.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) overflow();
      return Value(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value(json.template get<double>());
    case nlohmann::json::value_t::string:
      return Value(json.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> items;
      items.reserve(json.size());
      for (const auto& item : json) items.push_back(convert_json(item, depth + 1));
      return Value::list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      Dict dict;
      for (auto it = json.begin(); it != json.end(); ++it)
        dict.set(Value(it.key()), convert_json(it.value(), depth + 1));
      return Value::dict(std::move(dict));
    }
    default:
      throw RenderError("unsupported JSON value (binary or discarded)");
  }
}

void json_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out.push_back('"');
  char buf[16];
  for (char32_t c : pystr::decode(s)) {
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
      if (c >= 0x10000) {  // a surrogate pair, as Python writes it
        char32_t v = c - 0x10000;
        std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 + (v >> 10)),
                      static_cast<unsigned>(0xDC00 + (v & 0x3FF)));
      } else {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      }
      out += buf;
    } else {
      pystr::append_utf8(out, c);
    }
  }
  out.push_back('"');
}

std::string json_key(const Value& key) {
  switch (key.type()) {
    case Value::Type::kString:
      return key.str();
    case Value::Type::kFloat:
      return pystr::float_repr(key.as_float());
    case Value::Type::kBool:
      return key.as_bool() ? "true" : "false";
    case Value::Type::kNone:
      return "null";
    case Value::Type::kInt:
      return std::to_string(key.as_int());
    default:
      throw RenderError("keys must be str, int, float, bool or None, not " + key.type_name());
  }
}

void json_value(std::string& out, const Value& v, const JsonFormat& format, int level) {
  check_size(out.size());
  switch (v.type()) {
    case Value::Type::kNone:
      out += "null";
      return;
    case Value::Type::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Type::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Type::kFloat: {
      double d = v.as_float();
      out += std::isnan(d) ? "NaN" : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity") : pystr::float_repr(d);
      return;
    }
    case Value::Type::kString:
      json_string(out, v.str(), format.ensure_ascii);
      return;
    case Value::Type::kList:
    case Value::Type::kDict:
      break;
    default:
      throw RenderError("Object of type " + v.type_name() + " is not JSON serializable");
  }
  bool is_list = v.is_list();
  size_t n = is_list ? v.list().items.size() : v.dict().size();
  if (n == 0) {
    out += is_list ? "[]" : "{}";
    return;
  }
  std::string newline_indent;
  if (format.indent) {
    newline_indent = "\n";
    for (int i = 0; i <= level; ++i) newline_indent += *format.indent;
  }
  out.push_back(is_list ? '[' : '{');
  out += newline_indent;
  if (is_list) {
    for (size_t i = 0; i < n; ++i) {
      if (i) out += format.item_separator + newline_indent;
      json_value(out, v.list().items[i], format, level + 1);
    }
  } else {
    std::vector<std::pair<Value, Value>> items = v.dict().items();
    if (format.sort_keys) {
      std::stable_sort(items.begin(), items.end(),
                       [](const auto& x, const auto& y) { return compare(CompareOp::kLt, x.first, y.first); });
    }
    for (size_t i = 0; i < n; ++i) {
      if (i) out += format.item_separator + newline_indent;
      json_string(out, json_key(items[i].first), format.ensure_ascii);
      out += format.key_separator;
      json_value(out, items[i].second, format, level + 1);
    }
  }
  if (format.indent) {
    out.push_back('\n');
    for (int i = 0; i < level; ++i) out += *format.indent;
  }
  out.push_back(is_list ? ']' : '}');
}

}  // namespace

WorkBudget::WorkBudget(uint64_t limit) : left_(limit), previous_(active_budget) { active_budget = this; }
WorkBudget::~WorkBudget() { active_budget = previous_; }

void charge_work(uint64_t units) {
  WorkBudget* budget = active_budget;
  if (!budget) return;
  if (units > budget->left_) {
    budget->left_ = 0;
    throw RenderError("the template did too much work (an endless loop?); rendering stopped");
  }
  budget->left_ -= units;
}

Value::Value(std::string s) : type_(Type::kString) {
  check_size(s.size());
  charge_work(1 + s.size() / 64);
  data_ = std::make_shared<const std::string>(std::move(s));
}

Value Value::none() {
  Value v;
  v.type_ = Type::kNone;
  return v;
}

Value Value::undefined(std::string message) {
  Value v;
  v.data_ = std::make_shared<const std::string>(std::move(message));
  return v;
}

Value Value::list(std::vector<Value> items, bool tuple) {
  if (items.size() > kMaxItems) throw RenderError("list longer than " + std::to_string(kMaxItems) + " items");
  charge_work(1 + items.size());
  auto list = std::make_shared<List>();
  for (const Value& item : items) list->depth = std::max(list->depth, item.depth() + 1);
  if (list->depth > kMaxDepth) throw RenderError("value nested deeper than " + std::to_string(kMaxDepth) + " levels");
  list->items = std::move(items);
  list->tuple = tuple;
  Value v;
  v.type_ = Type::kList;
  v.data_ = std::shared_ptr<const List>(std::move(list));
  return v;
}

Value Value::dict(Dict dict) {
  Value v;
  v.type_ = Type::kDict;
  v.data_ = std::make_shared<const Dict>(std::move(dict));
  return v;
}

Value Value::object(std::shared_ptr<Object> object) {
  Value v;
  v.type_ = Type::kObject;
  v.data_ = std::move(object);
  return v;
}

bool Value::is_tuple() const { return type_ == Type::kList && list().tuple; }

int64_t Value::as_int() const { return type_ == Type::kBool ? int64_t{as_bool()} : std::get<int64_t>(data_); }

double Value::as_float() const {
  return type_ == Type::kFloat ? std::get<double>(data_) : static_cast<double>(as_int());
}

std::string Value::undefined_message() const {
  const auto* message = std::get_if<std::shared_ptr<const std::string>>(&data_);
  return message && *message ? **message : "undefined value";
}

void Value::raise_undefined() const { throw RenderError(undefined_message()); }

bool Value::truthy() const {
  switch (type_) {
    case Type::kUndefined:
    case Type::kNone:
      return false;
    case Type::kBool:
      return as_bool();
    case Type::kInt:
      return as_int() != 0;
    case Type::kFloat:
      return as_float() != 0;
    case Type::kString:
      return !str().empty();
    case Type::kList:
      return !list().items.empty();
    case Type::kDict:
      return dict().size() != 0;
    case Type::kObject:
      return true;
  }
  return false;
}

std::string Value::to_string() const {
  switch (type_) {
    case Type::kUndefined:
      return "";
    case Type::kString:
      return str();
    default:
      return repr();
  }
}

std::string Value::repr() const {
  switch (type_) {
    case Type::kUndefined:
      return "Undefined";
    case Type::kNone:
      return "None";
    case Type::kBool:
      return as_bool() ? "True" : "False";
    case Type::kInt:
      return std::to_string(as_int());
    case Type::kFloat:
      return pystr::float_repr(as_float());
    case Type::kString:
      return pystr::repr(str());
    case Type::kList: {
      const List& l = list();
      std::string out = l.tuple ? "(" : "[";
      for (size_t i = 0; i < l.items.size(); ++i) {
        if (i) out += ", ";
        out += l.items[i].repr();
        check_size(out.size());
      }
      if (l.tuple && l.items.size() == 1) out += ",";
      return out + (l.tuple ? ")" : "]");
    }
    case Type::kDict:
      return dict_repr(dict());
    case Type::kObject:
      return object().repr();
  }
  return "";
}

std::string Value::type_name() const {
  switch (type_) {
    case Type::kUndefined:
      return "Undefined";
    case Type::kNone:
      return "NoneType";
    case Type::kBool:
      return "bool";
    case Type::kInt:
      return "int";
    case Type::kFloat:
      return "float";
    case Type::kString:
      return "str";
    case Type::kList:
      return is_tuple() ? "tuple" : "list";
    case Type::kDict:
      return "dict";
    case Type::kObject:
      return object().type_name();
  }
  return "";
}

int Value::depth() const {
  if (type_ == Type::kList) return list().depth;
  if (type_ == Type::kDict) return dict().depth();
  return 0;
}

const Value* Dict::find(const Value& key) const {
  auto it = index_.find(hash_key(key));
  return it == index_.end() ? nullptr : &items_[it->second].second;
}

void Dict::set(const Value& key, Value value) {
  charge_work(1);
  depth_ = std::max({depth_, value.depth() + 1, key.depth() + 1});
  if (depth_ > kMaxDepth) throw RenderError("value nested deeper than " + std::to_string(kMaxDepth) + " levels");
  auto [it, inserted] = index_.emplace(hash_key(key), items_.size());
  if (inserted) {
    if (items_.size() >= kMaxItems) throw RenderError("dict larger than " + std::to_string(kMaxItems) + " items");
    items_.emplace_back(key, std::move(value));
  } else {
    items_[it->second].second = std::move(value);
  }
}

void Dict::clear() {
  items_.clear();
  index_.clear();
}

Value Object::call(Interpreter&, const Args&) const {
  throw RenderError("'" + type_name() + "' object is not callable");
}

std::string Namespace::repr() const { return "<Namespace " + dict_repr(attributes) + ">"; }

std::optional<Value> Namespace::attribute(const std::string& name) const {
  if (const Value* v = attributes.find(Value(name))) return *v;
  return std::nullopt;
}

bool equals(const Value& a, const Value& b) {
  if (a.is_undefined() || b.is_undefined()) return a.is_undefined() && b.is_undefined();
  if (a.is_number() && b.is_number()) return compare_numbers(a, b) == 0;
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Value::Type::kNone:
      return true;
    case Value::Type::kString:
      return a.str() == b.str();
    case Value::Type::kList: {
      const auto& x = a.list();
      const auto& y = b.list();
      if (x.tuple != y.tuple || x.items.size() != y.items.size()) return false;
      charge_work(x.items.size());
      for (size_t i = 0; i < x.items.size(); ++i) {
        if (!equals(x.items[i], y.items[i])) return false;
      }
      return true;
    }
    case Value::Type::kDict: {
      if (a.dict().size() != b.dict().size()) return false;
      for (const auto& [key, value] : a.dict().items()) {
        const Value* other = b.dict().find(key);
        if (!other || !equals(value, *other)) return false;
      }
      return true;
    }
    case Value::Type::kObject:
      return a.object_ptr() == b.object_ptr();
    default:
      return false;
  }
}

bool compare(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq:
      return equals(a, b);
    case CompareOp::kNe:
      return !equals(a, b);
    case CompareOp::kIn:
    case CompareOp::kNotIn: {
      bool found = false;
      if (b.is_string()) {
        if (!a.is_string()) {
          throw RenderError("'in <string>' requires string as left operand, not " + a.type_name());
        }
        found = b.str().find(a.str()) != std::string::npos;
      } else if (b.is_dict()) {
        found = b.dict().find(a) != nullptr;
      } else if (b.is_list()) {
        charge_work(b.list().items.size());
        for (const Value& item : b.list().items) {
          if (equals(a, item)) {
            found = true;
            break;
          }
        }
      } else if (!b.is_undefined()) {
        throw RenderError("argument of type '" + b.type_name() + "' is not iterable");
      }
      return op == CompareOp::kIn ? found : !found;
    }
    default:
      return ordered(op, a, b);
  }
}

Value arithmetic(BinaryOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) a.raise_undefined();
  if (b.is_undefined()) b.raise_undefined();
  bool numbers = a.is_number() && b.is_number();
  bool ints = both_int(a, b);
  switch (op) {
    case BinaryOp::kAdd:
      if (ints) return Value(checked_add(a.as_int(), b.as_int()));
      if (numbers) return Value(a.as_float() + b.as_float());
      if (a.is_string() && b.is_string()) {
        check_size(a.str().size() + b.str().size());
        return Value(a.str() + b.str());
      }
      if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
        std::vector<Value> items = a.list().items;
        items.insert(items.end(), b.list().items.begin(), b.list().items.end());
        return Value::list(std::move(items), a.is_tuple());
      }
      if (a.is_string() || a.is_list()) {
        throw RenderError("can only concatenate " + a.type_name() + " (not \"" + b.type_name() + "\") to " +
                          a.type_name());
      }
      unsupported("+", a, b);
    case BinaryOp::kSub:
      if (ints) return Value(checked_sub(a.as_int(), b.as_int()));
      if (numbers) return Value(a.as_float() - b.as_float());
      unsupported("-", a, b);
    case BinaryOp::kMul:
      if (ints) return Value(checked_mul(a.as_int(), b.as_int()));
      if (numbers) return Value(a.as_float() * b.as_float());
      if ((a.is_string() || a.is_list()) && b.is_int()) return repeat(a, b.as_int());
      if ((b.is_string() || b.is_list()) && a.is_int()) return repeat(b, a.as_int());
      if (a.is_string() || a.is_list() || b.is_string() || b.is_list()) {
        const Value& other = (a.is_string() || a.is_list()) ? b : a;
        throw RenderError("can't multiply sequence by non-int of type '" + other.type_name() + "'");
      }
      unsupported("*", a, b);
    case BinaryOp::kDiv:
      if (!numbers) unsupported("/", a, b);
      if (b.as_float() == 0) throw RenderError("division by zero");
      return Value(a.as_float() / b.as_float());
    case BinaryOp::kFloorDiv:
      if (!numbers) unsupported("//", a, b);
      return floor_divide(a, b, false);
    case BinaryOp::kMod:
      if (a.is_string()) throw RenderError("string formatting with '%' is not supported");
      if (!numbers) unsupported("%", a, b);
      return floor_divide(a, b, true);
    case BinaryOp::kPow:
      if (!numbers) unsupported("** or pow()", a, b);
      return power(a, b);
  }
  return Value();
}

Value negate(const Value& a) {
  if (a.is_undefined()) a.raise_undefined();
  if (a.is_int()) return Value(checked_sub(0, a.as_int()));
  if (a.is_number()) return Value(-a.as_float());
  throw RenderError("bad operand type for unary -: '" + a.type_name() + "'");
}

std::vector<Value> iterate(const Value& v) {
  charge_work(1 + static_cast<uint64_t>(v.is_string() ? v.str().size() : v.is_list() ? v.list().items.size() : 0));
  switch (v.type()) {
    case Value::Type::kUndefined:
      return {};
    case Value::Type::kList:
      return v.list().items;
    case Value::Type::kDict: {
      std::vector<Value> keys;
      for (const auto& item : v.dict().items()) keys.push_back(item.first);
      return keys;
    }
    case Value::Type::kString: {
      std::vector<Value> chars;
      for (char32_t c : pystr::decode(v.str())) chars.emplace_back(pystr::encode(std::u32string(1, c)));
      return chars;
    }
    default:
      throw RenderError("'" + v.type_name() + "' object is not iterable");
  }
}

int64_t length(const Value& v) {
  switch (v.type()) {
    case Value::Type::kUndefined:
      return 0;
    case Value::Type::kString:
      charge_work(1 + v.str().size() / 64);
      return static_cast<int64_t>(pystr::length(v.str()));
    case Value::Type::kList:
      return static_cast<int64_t>(v.list().items.size());
    case Value::Type::kDict:
      return static_cast<int64_t>(v.dict().size());
    default:
      throw RenderError("object of type '" + v.type_name() + "' has no len()");
  }
}

Value from_json(const nlohmann::json& json) { return convert_json(json, 0); }
Value from_json(const nlohmann::ordered_json& json) { return convert_json(json, 0); }

std::string to_json(const Value& value, const JsonFormat& format) {
  std::string out;
  json_value(out, value, format, 0);
  check_size(out.size());
  return out;
}

}  // namespace peft::jinja
