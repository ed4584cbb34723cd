// The syntax tree of a template and the parser that builds it, following jinja2's grammar and operator precedence
// (conditional < or < and < not < comparisons < + - < ~ < * / // % < ** < unary - + < filters and tests < postfix
// `.attr` `[key]` `(args)`). Constructs chat templates do not use are refused here, with the template line.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/jinja/value.h"

namespace peft::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kLiteral,    // value
    kName,       // name
    kList,       // children: items
    kTuple,      // children: items
    kDict,       // children: key, value, key, value, ...
    kAttribute,  // children[0].name
    kItem,       // children[0][children[1]]
    kSlice,      // children[0][children[1]:children[2]:children[3]]; a missing bound is null
    kNegate,     // -children[0]
    kPlus,       // +children[0]
    kBinary,     // children[0] <binary_op> children[1]
    kConcat,     // children joined by ~
    kCompare,    // children[0] compare_ops[0] children[1] compare_ops[1] children[2] ...
    kAnd,        // children[0] and children[1]
    kOr,
    kNot,
    kCondition,  // children[0] if children[1] else children[2] (null: undefined)
    kFilter,     // children[0] | name(children[1:], keywords); known=false: an unknown filter, raised when reached
    kTest,       // children[0] is [not] name(children[1:], keywords)
    kCall,       // children[0](children[1:], keywords)
  };
  Kind kind;
  int line;
  Value value;
  std::string name;
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> keywords;
  BinaryOp binary_op = BinaryOp::kAdd;
  std::vector<CompareOp> compare_ops;
  bool negated = false;  // kTest: `is not`
  bool known = true;     // kFilter / kTest: the name exists
  int height = 1;        // levels of the tree below and including this node (the parser bounds it)
};

// The left side of `set` and `for`: a name, `ns.attr`, or a tuple of targets.
struct Target {
  enum class Kind { kName, kNamespaceAttribute, kTuple };
  Kind kind = Kind::kName;
  std::string name;
  std::string attribute;
  std::vector<Target> items;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }} / {% print expr %}
    kIf,        // expr, body, else_body (an elif is an kIf alone in else_body)
    kFor,       // target, expr (iterable), condition (`if` filter, may be null), body, else_body
    kSet,       // target = expr
    kSetBlock,  // {% set target %}body{% endset %}; filter: optional, its children[0] is null (the body)
    kMacro,     // name, params, defaults (for the last defaults.size() params), body
    kBreak,
    kContinue,
    kGeneration,  // {% generation %}body{% endgeneration %}
  };
  Kind kind;
  int line;
  std::string text;
  ExprPtr expr;
  ExprPtr condition;
  ExprPtr filter;
  Target target;
  Body body;
  Body else_body;
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;
};

// Parses a whole template; throws peft::Error "<name> line N: ..." on syntax errors and unsupported constructs.
Body parse(const std::string& source, const std::string& name, bool* has_generation_blocks);

}  // namespace peft::jinja
