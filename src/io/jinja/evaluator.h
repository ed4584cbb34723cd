// Executes a parsed template. Scoping follows jinja2: every for-loop iteration, macro call, set block and
// generation block gets its own scope, so `{% set %}` inside them does not leak out (templates carry state out of
// loops with namespace()); `if` opens no scope.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "io/jinja/parser.h"
#include "io/jinja/template.h"
#include "io/jinja/value.h"

namespace peft::jinja {

// Variables visible at one point: this scope's, then its parents' (up to the context and the globals).
struct Scope {
  explicit Scope(std::shared_ptr<Scope> parent) : parent(std::move(parent)) {}
  const Value* find(const std::string& name) const;
  std::shared_ptr<Scope> parent;
  std::unordered_map<std::string, Value> variables;
};

class Macro;

class Interpreter {
 public:
  Interpreter(const std::string& template_name, const RenderOptions& options);
  ~Interpreter();
  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  // context: a dict of the template's variables. Throws peft::Error with the template name and line.
  Rendered render(const Body& body, const Value& context);

  // Hooks for the built-ins.
  const RenderOptions& options() const { return options_; }
  Value call_macro(const Macro& macro, const Args& args);
  // Namespaces created while rendering; emptied afterwards, which frees those that hold themselves.
  void track_namespace(std::shared_ptr<Namespace> ns);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow execute(const Body& body, const std::shared_ptr<Scope>& scope);
  Flow execute(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
  Flow execute_for(const Stmt& stmt, const std::shared_ptr<Scope>& scope);
  Value evaluate(const Expr& expr, const std::shared_ptr<Scope>& scope);
  Value evaluate_node(const Expr& expr, const std::shared_ptr<Scope>& scope);
  Args evaluate_args(const Expr& expr, const std::shared_ptr<Scope>& scope);
  // A block set's filters applied to its rendered body.
  Value apply_filters(const Expr& filter, Value body, const std::shared_ptr<Scope>& scope);
  void assign(const Target& target, const Value& value, Scope& scope);
  // Runs body with output going to a fresh string, which it returns.
  std::string capture(const Body& body, const std::shared_ptr<Scope>& scope);
  void write(const std::string& text);

  std::string name_;
  RenderOptions options_;
  std::string* out_ = nullptr;
  std::vector<std::pair<size_t, size_t>> spans_;
  int depth_ = 0;       // nested execute/evaluate calls: bounds the C++ stack
  int call_depth_ = 0;  // nested macro calls
  // Reference cycles (a namespace holding itself, a macro stored in the scope it closes over) are broken after the
  // render by emptying these.
  std::vector<std::shared_ptr<Namespace>> namespaces_;
  size_t prune_at_ = 1024;
  std::vector<std::weak_ptr<Scope>> macro_scopes_;
};

}  // namespace peft::jinja
