#include "io/jinja/evaluator.h"

#include <algorithm>
#include <new>

#include "core/error.h"
#include "io/jinja/builtins.h"
#include "io/jinja/filters.h"

namespace peft::jinja {

namespace {

// Nested execute/evaluate calls allowed at once: room for 200 macro levels of ordinary templates, and at most about
// 1 MB of stack (under 6 MB with AddressSanitizer).
constexpr int kMaxNesting = 2000;
// Units of work one render may spend: a statement is 1, a loop iteration 2, a list item 1, 64 string bytes 1.
// A unit is some 50 ns, so this stops a runaway template within a second; the real chat templates in the tests
// render a 40,000-message conversation within it.
constexpr uint64_t kMaxWork = 5'000'000;

// A RenderError with the template line it happened on (the innermost node that knows its line adds it).
struct LocatedError {
  int line;
  std::string message;
};

struct NestingGuard {
  NestingGuard(int& depth, int limit, const char* what) : depth(depth) {
    if (++depth > limit) {
      --depth;
      throw RenderError(what);
    }
  }
  ~NestingGuard() { --depth; }
  int& depth;
};

// The `loop` variable of a for loop.
class Loop final : public Object {
 public:
  explicit Loop(std::vector<Value> items) : items_(std::move(items)) {}
  void set_index(size_t index) { index_ = index; }
  std::string type_name() const override { return "LoopContext"; }
  std::string repr() const override {
    return "<LoopContext " + std::to_string(index_ + 1) + "/" + std::to_string(items_.size()) + ">";
  }
  std::optional<Value> attribute(const std::string& name) const override {
    int64_t n = static_cast<int64_t>(items_.size()), i = static_cast<int64_t>(index_);
    if (name == "index") return Value(i + 1);
    if (name == "index0") return Value(i);
    if (name == "revindex") return Value(n - i);
    if (name == "revindex0") return Value(n - i - 1);
    if (name == "first") return Value(i == 0);
    if (name == "last") return Value(i == n - 1);
    if (name == "length") return Value(n);
    if (name == "depth") return Value(1);
    if (name == "depth0") return Value(0);
    if (name == "previtem") return i > 0 ? items_[index_ - 1] : Value::undefined("there is no previous item");
    if (name == "nextitem") return i + 1 < n ? items_[index_ + 1] : Value::undefined("there is no next item");
    if (name == "cycle") {
      size_t index = index_;
      return Value::object(std::make_shared<Function>("cycle", [index](Interpreter&, const Args& args) {
        if (args.positional.empty()) throw RenderError("no items for cycling given");
        return args.positional[index % args.positional.size()];
      }));
    }
    if (name == "changed") {
      auto last = changed_;
      return Value::object(std::make_shared<Function>("changed", [last](Interpreter&, const Args& args) {
        Value current = Value::list(args.positional);
        if (*last && equals(**last, current)) return Value(false);
        *last = current;
        return Value(true);
      }));
    }
    return std::nullopt;
  }

 private:
  std::vector<Value> items_;
  size_t index_ = 0;
  std::shared_ptr<std::optional<Value>> changed_ = std::make_shared<std::optional<Value>>();
};

}  // namespace

// A {% macro %}: renders its body with the arguments bound, in a scope whose parent is where it was defined.
class Macro final : public Object {
 public:
  Macro(const Stmt& node, std::shared_ptr<Scope> closure) : node(node), closure(std::move(closure)) {}
  std::string type_name() const override { return "Macro"; }
  std::string repr() const override { return "<Macro '" + node.name + "'>"; }
  std::optional<Value> attribute(const std::string& name) const override {
    if (name == "name") return Value(node.name);
    return std::nullopt;
  }
  bool callable() const override { return true; }
  Value call(Interpreter& interpreter, const Args& args) const override { return interpreter.call_macro(*this, args); }

  const Stmt& node;
  std::shared_ptr<Scope> closure;
};

const Value* Scope::find(const std::string& name) const {
  for (const Scope* scope = this; scope; scope = scope->parent.get()) {
    auto it = scope->variables.find(name);
    if (it != scope->variables.end()) return &it->second;
  }
  return nullptr;
}

Interpreter::Interpreter(const std::string& template_name, const RenderOptions& options)
    : name_(template_name), options_(options) {}

Interpreter::~Interpreter() {
  // Break the reference cycles (`{% set ns.self = ns %}`, a macro in the scope it closes over); the namespaces are
  // emptied one by one, so long chains of them are freed without deep recursion.
  for (const auto& weak : macro_scopes_) {
    if (auto scope = weak.lock()) scope->variables.clear();
  }
  for (const auto& ns : namespaces_) ns->attributes.clear();
}

void Interpreter::track_namespace(std::shared_ptr<Namespace> ns) {
  if (namespaces_.size() >= prune_at_) {
    // Namespaces only this list still holds cannot be part of a cycle: let them go.
    std::vector<std::shared_ptr<Namespace>> kept;
    for (auto& tracked : namespaces_) {
      if (tracked.use_count() > 1) kept.push_back(std::move(tracked));
    }
    namespaces_ = std::move(kept);
    prune_at_ = std::max<size_t>(1024, 2 * namespaces_.size());
  }
  namespaces_.push_back(std::move(ns));
}

Rendered Interpreter::render(const Body& body, const Value& context) {
  Rendered result;
  WorkBudget budget(kMaxWork);
  try {
    auto globals = std::make_shared<Scope>(nullptr);
    add_globals(globals->variables);
    auto top = std::make_shared<Scope>(globals);
    if (!context.is_dict()) throw LocatedError{1, "the context must be a JSON object"};
    for (const auto& [key, value] : context.dict().items()) top->variables[key.to_string()] = value;
    out_ = &result.text;
    execute(body, top);
  } catch (const LocatedError& e) {
    throw Error(name_ + " line " + std::to_string(e.line) + ": " + e.message);
  } catch (const RaisedException& e) {
    throw Error(name_ + ": raise_exception: " + e.what());
  } catch (const RenderError& e) {
    throw Error(name_ + ": " + e.what());
  } catch (const std::bad_alloc&) {
    throw Error(name_ + ": out of memory while rendering");
  }
  result.generation_spans = std::move(spans_);
  return result;
}

void Interpreter::write(const std::string& text) {
  if (out_->size() + text.size() > kMaxStringBytes) {
    throw RenderError("output larger than " + std::to_string(kMaxStringBytes >> 20) + " MiB");
  }
  charge_work(1 + text.size() / 64);
  out_->append(text);
}

std::string Interpreter::capture(const Body& body, const std::shared_ptr<Scope>& scope) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  try {
    execute(body, scope);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buffer;
}

Interpreter::Flow Interpreter::execute(const Body& body, const std::shared_ptr<Scope>& scope) {
  for (const auto& stmt : body) {
    Flow flow = execute(*stmt, scope);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::execute(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  try {
    NestingGuard guard(depth_, kMaxNesting, "template nested too deeply while rendering");
    charge_work(1);
    switch (stmt.kind) {
      case Stmt::Kind::kText:
        write(stmt.text);
        break;
      case Stmt::Kind::kOutput: {
        Value value = evaluate(*stmt.expr, scope);
        write(value.is_string() ? value.str() : value.to_string());
        break;
      }
      case Stmt::Kind::kIf:
        return execute(evaluate(*stmt.expr, scope).truthy() ? stmt.body : stmt.else_body, scope);
      case Stmt::Kind::kFor:
        return execute_for(stmt, scope);
      case Stmt::Kind::kSet:
        assign(stmt.target, evaluate(*stmt.expr, scope), *scope);
        break;
      case Stmt::Kind::kSetBlock: {
        Value text(capture(stmt.body, std::make_shared<Scope>(scope)));
        assign(stmt.target, stmt.filter ? apply_filters(*stmt.filter, text, scope) : text, *scope);
        break;
      }
      case Stmt::Kind::kMacro:
        scope->variables[stmt.name] = Value::object(std::make_shared<Macro>(stmt, scope));
        macro_scopes_.push_back(scope);
        break;
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
      case Stmt::Kind::kGeneration: {
        // Hugging Face's AssistantTracker: the block's output and where it lies in the rendered text.
        size_t begin = out_->size();
        execute(stmt.body, std::make_shared<Scope>(scope));
        spans_.emplace_back(begin, out_->size());
        break;
      }
    }
  } catch (const RenderError& e) {
    throw LocatedError{stmt.line, e.what()};
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::execute_for(const Stmt& stmt, const std::shared_ptr<Scope>& scope) {
  std::vector<Value> items = iterate(evaluate(*stmt.expr, scope));
  if (stmt.condition) {  // `for x in xs if cond`: filtered before the loop, so loop.length counts what is kept
    std::vector<Value> kept;
    for (Value& item : items) {
      auto probe = std::make_shared<Scope>(scope);
      assign(stmt.target, item, *probe);
      if (evaluate(*stmt.condition, probe).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return execute(stmt.else_body, std::make_shared<Scope>(scope));  // its sets stay inside too
  auto loop = std::make_shared<Loop>(items);
  Value loop_value = Value::object(loop);
  for (size_t i = 0; i < items.size(); ++i) {
    charge_work(2);
    loop->set_index(i);
    auto iteration = std::make_shared<Scope>(scope);
    assign(stmt.target, items[i], *iteration);
    iteration->variables["loop"] = loop_value;
    if (execute(stmt.body, iteration) == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Interpreter::assign(const Target& target, const Value& value, Scope& scope) {
  switch (target.kind) {
    case Target::Kind::kName:
      scope.variables[target.name] = value;
      return;
    case Target::Kind::kNamespaceAttribute: {
      const Value* ns = scope.find(target.name);
      auto* object = ns && ns->is_object() ? dynamic_cast<Namespace*>(&ns->object()) : nullptr;
      if (!object) throw RenderError("cannot assign attribute on non-namespace object");
      object->attributes.set(Value(target.attribute), value);
      return;
    }
    case Target::Kind::kTuple: {
      std::vector<Value> items = iterate(value);
      size_t expected = target.items.size();
      if (items.size() < expected) {
        throw RenderError("not enough values to unpack (expected " + std::to_string(expected) + ", got " +
                          std::to_string(items.size()) + ")");
      }
      if (items.size() > expected) {
        throw RenderError("too many values to unpack (expected " + std::to_string(expected) + ")");
      }
      for (size_t i = 0; i < expected; ++i) assign(target.items[i], items[i], scope);
      return;
    }
  }
}

Value Interpreter::call_macro(const Macro& macro, const Args& args) {
  const Stmt& node = macro.node;
  NestingGuard guard(call_depth_, kMaxDepth, "macro calls nested deeper than 200 levels (endless recursion?)");
  auto scope = std::make_shared<Scope>(macro.closure);
  const auto& params = node.params;
  if (args.positional.size() > params.size()) {
    throw RenderError("macro '" + node.name + "' takes not more than " + std::to_string(params.size()) +
                      " argument(s)");
  }
  std::vector<bool> bound(params.size(), false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    scope->variables[params[i]] = args.positional[i];
    bound[i] = true;
  }
  for (const auto& [key, value] : args.keywords) {
    auto it = std::find(params.begin(), params.end(), key);
    if (it == params.end()) throw RenderError("macro '" + node.name + "' takes no keyword argument '" + key + "'");
    size_t index = static_cast<size_t>(it - params.begin());
    if (bound[index]) throw RenderError("macro '" + node.name + "' got multiple values for argument '" + key + "'");
    scope->variables[key] = value;
    bound[index] = true;
  }
  // Defaults are evaluated at call time, in the macro's scope (they may use earlier parameters).
  size_t first_default = params.size() - node.defaults.size();
  for (size_t i = 0; i < params.size(); ++i) {
    if (bound[i]) continue;
    scope->variables[params[i]] = i >= first_default
                                      ? evaluate(*node.defaults[i - first_default], scope)
                                      : Value::undefined("parameter '" + params[i] + "' was not provided");
  }
  return Value(capture(node.body, scope));
}

Args Interpreter::evaluate_args(const Expr& expr, const std::shared_ptr<Scope>& scope) {
  Args args;
  for (size_t i = 1; i < expr.children.size(); ++i) args.positional.push_back(evaluate(*expr.children[i], scope));
  for (const auto& [key, value] : expr.keywords) args.keywords.emplace_back(key, evaluate(*value, scope));
  return args;
}

Value Interpreter::apply_filters(const Expr& filter, Value body, const std::shared_ptr<Scope>& scope) {
  Value subject = filter.children[0] ? apply_filters(*filter.children[0], std::move(body), scope) : std::move(body);
  try {
    if (!filter.known) throw RenderError("unknown filter '" + filter.name + "'");
    return apply_filter(*this, filter.name, subject, evaluate_args(filter, scope));
  } catch (const RenderError& e) {
    throw LocatedError{filter.line, e.what()};
  }
}

Value Interpreter::evaluate(const Expr& expr, const std::shared_ptr<Scope>& scope) {
  try {
    NestingGuard guard(depth_, kMaxNesting, "template nested too deeply while rendering");
    return evaluate_node(expr, scope);
  } catch (const RenderError& e) {
    throw LocatedError{expr.line, e.what()};
  }
}

Value Interpreter::evaluate_node(const Expr& expr, const std::shared_ptr<Scope>& scope) {
  const auto& c = expr.children;
  switch (expr.kind) {
    case Expr::Kind::kLiteral:
      return expr.value;
    case Expr::Kind::kName: {
      const Value* value = scope->find(expr.name);
      return value ? *value : Value::undefined("'" + expr.name + "' is undefined");
    }
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      std::vector<Value> items;
      for (const auto& child : c) items.push_back(evaluate(*child, scope));
      return Value::list(std::move(items), expr.kind == Expr::Kind::kTuple);
    }
    case Expr::Kind::kDict: {
      Dict dict;
      for (size_t i = 0; i + 1 < c.size(); i += 2) dict.set(evaluate(*c[i], scope), evaluate(*c[i + 1], scope));
      return Value::dict(std::move(dict));
    }
    case Expr::Kind::kAttribute:
      return get_attribute(evaluate(*c[0], scope), expr.name);
    case Expr::Kind::kItem:
      return get_item(evaluate(*c[0], scope), evaluate(*c[1], scope));
    case Expr::Kind::kSlice: {
      Value object = evaluate(*c[0], scope);
      auto bound = [&](size_t i) { return c[i] ? evaluate(*c[i], scope) : Value::none(); };
      Value start = bound(1), stop = bound(2), step = bound(3);
      return get_slice(object, start, stop, step);
    }
    case Expr::Kind::kNegate:
      return negate(evaluate(*c[0], scope));
    case Expr::Kind::kPlus: {
      Value v = evaluate(*c[0], scope);
      if (v.is_undefined()) v.raise_undefined();
      if (!v.is_number()) throw RenderError("bad operand type for unary +: '" + v.type_name() + "'");
      return v.is_int() ? Value(v.as_int()) : v;
    }
    case Expr::Kind::kBinary: {
      Value left = evaluate(*c[0], scope);
      return arithmetic(expr.binary_op, left, evaluate(*c[1], scope));
    }
    case Expr::Kind::kConcat: {
      std::string text;
      for (const auto& child : c) {
        text += evaluate(*child, scope).to_string();
        if (text.size() > kMaxStringBytes) throw RenderError("string longer than 64 MiB");
      }
      return Value(std::move(text));
    }
    case Expr::Kind::kCompare: {
      Value left = evaluate(*c[0], scope);
      for (size_t i = 0; i < expr.compare_ops.size(); ++i) {
        Value right = evaluate(*c[i + 1], scope);
        if (!compare(expr.compare_ops[i], left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case Expr::Kind::kAnd: {
      Value left = evaluate(*c[0], scope);
      return left.truthy() ? evaluate(*c[1], scope) : left;
    }
    case Expr::Kind::kOr: {
      Value left = evaluate(*c[0], scope);
      return left.truthy() ? left : evaluate(*c[1], scope);
    }
    case Expr::Kind::kNot:
      return Value(!evaluate(*c[0], scope).truthy());
    case Expr::Kind::kCondition:
      if (evaluate(*c[1], scope).truthy()) return evaluate(*c[0], scope);
      if (c[2]) return evaluate(*c[2], scope);
      return Value::undefined("the inline if-expression on line " + std::to_string(expr.line) +
                              " evaluated to false and no else section was defined.");
    case Expr::Kind::kFilter: {
      if (!expr.known) throw RenderError("unknown filter '" + expr.name + "'");
      Value subject = evaluate(*c[0], scope);
      return apply_filter(*this, expr.name, subject, evaluate_args(expr, scope));
    }
    case Expr::Kind::kTest: {
      if (!expr.known) throw RenderError("unknown test '" + expr.name + "'");
      Value subject = evaluate(*c[0], scope);
      bool result = apply_test(*this, expr.name, subject, evaluate_args(expr, scope));
      return Value(result != expr.negated);
    }
    case Expr::Kind::kCall: {
      Value callee = evaluate(*c[0], scope);
      Args args = evaluate_args(expr, scope);
      if (callee.is_undefined()) callee.raise_undefined();
      if (!callee.is_object() || !callee.object().callable()) {
        throw RenderError("'" + callee.type_name() + "' object is not callable");
      }
      return callee.object().call(*this, args);
    }
  }
  return Value();
}

}  // namespace peft::jinja
