// The interpreter's runtime value: Python's data model as far as chat templates reach it (None, bool, int, float,
// str, list, tuple, dict, jinja2's Undefined, and objects: namespace, loop, macros, functions).
// Lists and dicts are immutable once built (jinja2's ImmutableSandboxedEnvironment refuses to mutate them), so
// values share them freely; only a Namespace changes, through `{% set ns.attr = ... %}`.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace peft::jinja {

// Limits that keep a hostile template or input from crashing or hanging the process.
inline constexpr int kMaxDepth = 200;                // nesting of values, expressions, blocks and macro calls
inline constexpr size_t kMaxStringBytes = 64 << 20;  // any string, the output included
inline constexpr size_t kMaxItems = 1 << 20;         // items of one list or dict built while rendering
inline constexpr int64_t kMaxRange = 100000;         // range(), as jinja2's sandbox (MAX_RANGE)

// An error raised while rendering (Python's TypeError, jinja2's UndefinedError, ...). It carries no location: the
// evaluator adds the template line of the node being evaluated.
class RenderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// raise_exception(message) in a template: Hugging Face's way to refuse a conversation (no template line added).
class RaisedException : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bounds the work of one render, so a hostile template ends with an error instead of running for hours: a render
// installs a budget for its thread; statements, loop iterations and operations on large values charge it.
class WorkBudget {
 public:
  explicit WorkBudget(uint64_t limit);
  ~WorkBudget();
  WorkBudget(const WorkBudget&) = delete;
  WorkBudget& operator=(const WorkBudget&) = delete;

 private:
  friend void charge_work(uint64_t units);
  uint64_t left_;
  WorkBudget* previous_;
};
// Throws RenderError when the installed budget runs out; free when none is installed.
void charge_work(uint64_t units);

class Value;
struct List;
class Dict;
class Object;
class Interpreter;

// Arguments of a call, filter or test, as written: positional, then keyword.
struct Args {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keywords;
};

class Value {
 public:
  enum class Type { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kObject };

  Value() = default;  // undefined: "... is undefined" when used
  Value(bool b) : type_(Type::kBool), data_(b) {}
  Value(int i) : type_(Type::kInt), data_(int64_t{i}) {}
  Value(int64_t i) : type_(Type::kInt), data_(i) {}
  Value(double d) : type_(Type::kFloat), data_(d) {}
  Value(std::string s);
  Value(const char* s) : Value(std::string(s)) {}

  static Value none();
  // An Undefined whose use raises `message` (e.g. "'x' is undefined"); printing it gives "".
  static Value undefined(std::string message);
  // Throws RenderError when the items nest deeper than kMaxDepth or number more than kMaxItems.
  static Value list(std::vector<Value> items, bool tuple = false);
  static Value dict(Dict dict);
  static Value object(std::shared_ptr<Object> object);

  Type type() const { return type_; }
  bool is_undefined() const { return type_ == Type::kUndefined; }
  bool is_none() const { return type_ == Type::kNone; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_list() const { return type_ == Type::kList; }
  bool is_dict() const { return type_ == Type::kDict; }
  bool is_object() const { return type_ == Type::kObject; }
  bool is_int() const { return type_ == Type::kInt || type_ == Type::kBool; }  // bool is an int in Python
  bool is_number() const { return is_int() || type_ == Type::kFloat; }
  bool is_tuple() const;

  bool as_bool() const { return std::get<bool>(data_); }
  int64_t as_int() const;   // bool or int
  double as_float() const;  // bool, int or float
  const std::string& str() const { return *std::get<std::shared_ptr<const std::string>>(data_); }
  const List& list() const { return *std::get<std::shared_ptr<const List>>(data_); }
  const Dict& dict() const { return *std::get<std::shared_ptr<const Dict>>(data_); }
  Object& object() const { return *std::get<std::shared_ptr<Object>>(data_); }
  const std::shared_ptr<Object>& object_ptr() const { return std::get<std::shared_ptr<Object>>(data_); }
  // What using this Undefined raises.
  std::string undefined_message() const;
  [[noreturn]] void raise_undefined() const;

  bool truthy() const;
  std::string to_string() const;  // str(x); Undefined prints ""
  std::string repr() const;       // repr(x), as inside a printed list
  std::string type_name() const;  // Python's type name: 'int', 'str', 'NoneType', ...
  int depth() const;              // nesting of lists and dicts: 0 for a scalar

 private:
  Type type_ = Type::kUndefined;
  // kUndefined keeps its message in the string slot (null: a plain "undefined value").
  std::variant<std::monostate, bool, int64_t, double, std::shared_ptr<const std::string>, std::shared_ptr<const List>,
               std::shared_ptr<const Dict>, std::shared_ptr<Object>>
      data_;
};

struct List {
  std::vector<Value> items;
  bool tuple = false;
  int depth = 1;
};

// A dict keeping insertion order (Python 3.7+), indexed by Python's hash equality (1 == 1.0 == True).
class Dict {
 public:
  const Value* find(const Value& key) const;
  void set(const Value& key, Value value);  // replaces in place or appends; throws for an unhashable key
  void clear();
  const std::vector<std::pair<Value, Value>>& items() const { return items_; }
  size_t size() const { return items_.size(); }
  int depth() const { return depth_; }

 private:
  std::vector<std::pair<Value, Value>> items_;
  std::unordered_map<std::string, size_t> index_;
  int depth_ = 1;
};

// Values with behaviour: namespace(), the loop variable, macros, functions and bound methods.
class Object {
 public:
  virtual ~Object() = default;
  virtual std::string type_name() const = 0;
  virtual std::string repr() const = 0;
  // `obj.name`; nullopt when there is no such attribute.
  virtual std::optional<Value> attribute(const std::string& /*name*/) const { return std::nullopt; }
  virtual bool callable() const { return false; }
  virtual Value call(Interpreter& interpreter, const Args& args) const;
};

// A built-in function or a bound method (`"text".startswith`, `loop.cycle`, `range`).
class Function final : public Object {
 public:
  using Body = std::function<Value(Interpreter&, const Args&)>;
  Function(std::string name, Body body) : name_(std::move(name)), body_(std::move(body)) {}
  std::string type_name() const override { return "builtin_function_or_method"; }
  std::string repr() const override { return "<built-in function " + name_ + ">"; }
  bool callable() const override { return true; }
  Value call(Interpreter& interpreter, const Args& args) const override { return body_(interpreter, args); }

 private:
  std::string name_;
  Body body_;
};

// jinja2's namespace(): the one mutable object, so that loops can carry state out (`{% set ns.found = true %}`).
class Namespace final : public Object {
 public:
  Dict attributes;
  std::string type_name() const override { return "Namespace"; }
  std::string repr() const override;
  std::optional<Value> attribute(const std::string& name) const override;
};

// Python operators, with Python's results and TypeError messages.
enum class BinaryOp { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow };
enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };
Value arithmetic(BinaryOp op, const Value& a, const Value& b);
bool compare(CompareOp op, const Value& a, const Value& b);
bool equals(const Value& a, const Value& b);
Value negate(const Value& a);

// What a for loop sees: list items, dict keys, string characters; Undefined iterates as empty.
std::vector<Value> iterate(const Value& v);
// len(v); Undefined has length 0.
int64_t length(const Value& v);

// Input data: JSON null, booleans, numbers, strings, arrays and objects (object keys in the json's order).
// Throws RenderError when nested deeper than kMaxDepth.
Value from_json(const nlohmann::json& json);
Value from_json(const nlohmann::ordered_json& json);

// Python's json.dumps(value, ensure_ascii, indent, separators, sort_keys), as Hugging Face's tojson filter calls it.
struct JsonFormat {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // None: one line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
std::string to_json(const Value& value, const JsonFormat& format);

}  // namespace peft::jinja
