#include "io/jinja/parser.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <unordered_set>

#include "io/jinja/filters.h"
#include "io/jinja/lexer.h"

namespace peft::jinja {
namespace {

using Names = std::vector<std::string>;

bool contains(const Names& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Statements jinja2 knows that this interpreter refuses (chat templates do not use them).
constexpr const char* kUnsupportedStatements[] = {"block", "extends", "include",    "import", "from",  "filter",
                                                  "with",  "call",    "autoescape", "do",     "trans", "pluralize"};
constexpr const char* kEndTags[] = {"endif",    "endfor",        "elif",     "else",         "endmacro",
                                    "endset",   "endfilter",     "endwith",  "endcall",      "endraw",
                                    "endblock", "endgeneration", "endtrans", "endautoescape"};

template <size_t N>
bool contains(const char* const (&names)[N], const std::string& name) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, const std::string& name) : tokens_(std::move(tokens)), name_(name) {}

  Body parse_template() {
    Body body = subparse({});
    // jinja2 checks filter and test names when it compiles the parsed template: an unknown one is an error unless
    // it sits in an if statement or a conditional expression, where it fails only when reached.
    for (const Expr* node : unknown_) {
      if (!node->known && !soft_nodes_.count(node)) {
        syntax_error(
            name_, node->line,
            std::string(node->kind == Expr::Kind::kFilter ? "unknown filter '" : "unknown test '") + node->name + "'");
      }
    }
    return body;
  }

  bool has_generation() const { return has_generation_; }

 private:
  // ---------------------------------------------------------------- token stream
  const Token& current() const { return tokens_[pos_]; }
  const Token& peek() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  Token next() {
    Token token = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return token;
  }
  bool is_name(const char* value) const { return current().type == TokenType::kName && current().value == value; }
  bool is_op(const char* op) const { return current().type == TokenType::kOperator && current().value == op; }
  bool skip_name(const char* value) {
    if (!is_name(value)) return false;
    next();
    return true;
  }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }

  static std::string describe(const Token& token) {
    switch (token.type) {
      case TokenType::kEnd:
        return "end of template";
      case TokenType::kBlockEnd:
        return "end of statement block";
      case TokenType::kVariableEnd:
        return "end of print statement";
      case TokenType::kString:
        return "string";
      case TokenType::kText:
        return "template text";
      default:
        return "'" + token.value + "'";
    }
  }

  [[noreturn]] void fail(const std::string& what) const { syntax_error(name_, current().line, what); }

  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected '") + op + "', got " + describe(current()));
  }
  void expect(TokenType type, const char* what) {
    if (current().type != type) fail(std::string("expected ") + what + ", got " + describe(current()));
    next();
  }
  std::string expect_name() {
    if (current().type != TokenType::kName) fail("expected a name, got " + describe(current()));
    return next().value;
  }

  // Guards the parser's recursion (and so the evaluator's) against absurdly nested input.
  struct DepthGuard {
    DepthGuard(Parser& parser) : parser(parser) {
      if (++parser.depth_ > kMaxDepth)
        parser.fail("template nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    ~DepthGuard() { --parser.depth_; }
    Parser& parser;
  };

  // Saves and restores a member for the extent of a scope.
  template <typename T>
  struct Saved {
    Saved(T& slot, T value) : slot(slot), old(slot) { slot = value; }
    ~Saved() { slot = old; }
    T& slot;
    T old;
  };

  ExprPtr make(Expr::Kind kind, int line) {
    auto node = std::make_unique<Expr>();
    node->kind = kind;
    node->line = line;
    return node;
  }
  StmtPtr make_stmt(Stmt::Kind kind, int line) {
    auto node = std::make_unique<Stmt>();
    node->kind = kind;
    node->line = line;
    return node;
  }

  // Expressions may not nest deeper than kMaxDepth either (a long `a + b + c ...` chain builds a deep tree).
  ExprPtr checked(ExprPtr node) {
    for (const auto& child : node->children) {
      if (child) node->height = std::max(node->height, child->height + 1);
    }
    for (const auto& keyword : node->keywords) node->height = std::max(node->height, keyword.second->height + 1);
    if (node->height > kMaxDepth) {
      syntax_error(name_, node->line, "expression nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    return node;
  }

  // ---------------------------------------------------------------- statements
  // Parses until one of end_tags opens a block tag (left as the current token) or, with no end tags, the end.
  Body subparse(const Names& end_tags) {
    DepthGuard guard(*this);
    Body body;
    while (true) {
      const Token& token = current();
      if (token.type == TokenType::kText) {
        auto text = make_stmt(Stmt::Kind::kText, token.line);
        text->text = token.value;
        body.push_back(std::move(text));
        next();
      } else if (token.type == TokenType::kVariableBegin) {
        auto output = make_stmt(Stmt::Kind::kOutput, token.line);
        next();
        output->expr = parse_tuple(false, true, {}, false);
        expect(TokenType::kVariableEnd, "'}}'");
        body.push_back(std::move(output));
      } else if (token.type == TokenType::kBlockBegin) {
        next();
        if (current().type == TokenType::kName && contains(end_tags, current().value)) return body;
        body.push_back(parse_statement());
        expect(TokenType::kBlockEnd, "'%}'");
      } else {                    // kEnd
        if (!end_tags.empty()) {  // reported where the template ends, as jinja2 does, naming the open block
          const OpenBlock& open = open_.back();
          fail("unexpected end of template: '" + open.tag + "' from line " + std::to_string(open.line) +
               " is never closed (expected '" + open.end_tag + "')");
        }
        return body;
      }
    }
  }

  // The statements of a block, after its opening tag: `%}`, the body, and optionally the end tag itself.
  Body parse_statements(const Names& end_tags, bool drop_end_tag) {
    skip_op(":");
    expect(TokenType::kBlockEnd, "'%}'");
    Body body = subparse(end_tags);
    if (drop_end_tag) next();
    return body;
  }

  StmtPtr parse_statement() {
    const Token& token = current();
    if (token.type != TokenType::kName) fail("expected a statement name, got " + describe(token));
    const std::string& tag = token.value;
    if (tag == "if") return parse_if();
    if (tag == "for") return parse_for();
    if (tag == "set") return parse_set();
    if (tag == "macro") return parse_macro();
    if (tag == "generation") return parse_generation();
    if (tag == "print") {  // {% print a, b %} writes a then b
      auto output = make_stmt(Stmt::Kind::kOutput, next().line);
      auto parts = make(Expr::Kind::kConcat, output->line);
      while (current().type != TokenType::kBlockEnd) {
        if (!parts->children.empty()) expect_op(",");
        parts->children.push_back(parse_expression(true));
      }
      output->expr = checked(std::move(parts));
      return output;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail("'" + tag + "' outside of a for loop");
      return make_stmt(tag == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue, next().line);
    }
    if (contains(kUnsupportedStatements, tag)) fail("unsupported statement '" + tag + "'");
    if (contains(kEndTags, tag)) {
      std::string what = "unexpected '" + tag + "'";
      if (!open_.empty()) {
        what += " (the innermost open block is '" + open_.back().tag + "' from line " +
                std::to_string(open_.back().line) + ", expecting '" + open_.back().end_tag + "')";
      }
      fail(what);
    }
    fail("unknown statement '" + tag + "'");
  }

  struct OpenBlock {
    std::string tag;
    std::string end_tag;
    int line;
  };
  struct Opened {
    Opened(Parser& parser, std::string tag, int line) : parser(parser) {
      parser.open_.push_back({tag, "end" + tag, line});
    }
    ~Opened() { parser.open_.pop_back(); }
    Parser& parser;
  };

  StmtPtr parse_if() {
    auto root = make_stmt(Stmt::Kind::kIf, next().line);
    Opened opened(*this, "if", root->line);
    Saved<bool> soft(soft_, true);
    Stmt* node = root.get();
    while (true) {
      node->expr = parse_tuple(false, false, {}, false);
      node->body = parse_statements({"elif", "else", "endif"}, false);
      Token end = next();
      if (end.value == "elif") {
        auto elif = make_stmt(Stmt::Kind::kIf, end.line);
        Stmt* next_node = elif.get();
        node->else_body.push_back(std::move(elif));
        node = next_node;
        continue;
      }
      if (end.value == "else") node->else_body = parse_statements({"endif"}, true);
      break;
    }
    return root;
  }

  StmtPtr parse_for() {
    auto node = make_stmt(Stmt::Kind::kFor, next().line);
    Opened opened(*this, "for", node->line);
    node->target = parse_target(false, {"in"});
    if (!skip_name("in")) fail("expected 'in', got " + describe(current()));
    node->expr = parse_tuple(false, false, {"recursive"}, false);
    Saved<bool> soft(soft_, false);
    if (skip_name("if")) node->condition = parse_expression(true);
    if (is_name("recursive")) fail("recursive for loops are not supported");
    {
      Saved<int> loops(loop_depth_, loop_depth_ + 1);
      node->body = parse_statements({"endfor", "else"}, false);
    }
    if (next().value == "else") node->else_body = parse_statements({"endfor"}, true);
    return node;
  }

  StmtPtr parse_set() {
    int line = next().line;
    Target target = parse_target(true, {});
    if (skip_op("=")) {
      auto node = make_stmt(Stmt::Kind::kSet, line);
      node->target = std::move(target);
      node->expr = parse_tuple(false, true, {}, false);
      return node;
    }
    auto node = make_stmt(Stmt::Kind::kSetBlock, line);
    Opened opened(*this, "set", line);
    node->target = std::move(target);
    Saved<bool> soft(soft_, false);
    if (is_op("|")) node->filter = parse_filters(nullptr);
    Saved<int> buffered(buffer_depth_, buffer_depth_ + 1);
    node->body = parse_statements({"endset"}, true);
    return node;
  }

  StmtPtr parse_macro() {
    auto node = make_stmt(Stmt::Kind::kMacro, next().line);
    Opened opened(*this, "macro", node->line);
    node->name = expect_name();
    Saved<bool> soft(soft_, false);
    expect_op("(");
    while (!is_op(")")) {
      if (!node->params.empty()) expect_op(",");
      node->params.push_back(expect_name());
      if (skip_op("=")) {
        node->defaults.push_back(parse_expression(true));
      } else if (!node->defaults.empty()) {
        fail("non-default argument follows default argument");
      }
    }
    expect_op(")");
    Saved<int> loops(loop_depth_, 0);
    Saved<int> buffered(buffer_depth_, buffer_depth_ + 1);
    node->body = parse_statements({"endmacro"}, true);
    return node;
  }

  // Hugging Face's AssistantTracker extension: marks the assistant's text for assistant-only loss masks.
  StmtPtr parse_generation() {
    auto node = make_stmt(Stmt::Kind::kGeneration, next().line);
    if (buffer_depth_ > 0) {
      fail("{% generation %} inside a macro, a set block or another generation block is not supported");
    }
    Opened opened(*this, "generation", node->line);
    has_generation_ = true;
    Saved<bool> soft(soft_, false);
    Saved<int> loops(loop_depth_, 0);
    Saved<int> buffered(buffer_depth_, buffer_depth_ + 1);
    node->body = parse_statements({"endgeneration"}, true);
    return node;
  }

  // A `set` or `for` target: name, `ns.attr` (set only), or a tuple of them, e.g. `for key, value in ...`.
  Target parse_target(bool with_namespace, const Names& extra_end) {
    Target target;
    if (with_namespace && current().type == TokenType::kName && peek().type == TokenType::kOperator &&
        peek().value == ".") {
      target.kind = Target::Kind::kNamespaceAttribute;
      target.name = next().value;
      next();
      target.attribute = expect_name();
      return target;
    }
    int line = current().line;
    ExprPtr expr = parse_tuple(true, false, extra_end, false);
    return to_target(*expr, line);
  }

  Target to_target(const Expr& expr, int line) {
    Target target;
    if (expr.kind == Expr::Kind::kName) {
      target.name = expr.name;
      return target;
    }
    if (expr.kind == Expr::Kind::kTuple) {
      target.kind = Target::Kind::kTuple;
      for (const auto& item : expr.children) target.items.push_back(to_target(*item, line));
      return target;
    }
    syntax_error(name_, line, "cannot assign to this expression (expected a name or a tuple of names)");
  }

  // ---------------------------------------------------------------- expressions
  // jinja2's parse_tuple: one expression, or a tuple when commas separate several.
  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const Names& extra_end, bool explicit_parentheses) {
    int line = current().line;
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      const Token& token = current();
      bool at_end = token.type == TokenType::kVariableEnd || token.type == TokenType::kBlockEnd || is_op(")") ||
                    (token.type == TokenType::kName && contains(extra_end, token.value));
      if (at_end) break;
      items.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (is_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parentheses) fail("expected an expression, got " + describe(current()));
    }
    auto tuple = make(Expr::Kind::kTuple, line);
    tuple->children = std::move(items);
    return checked(std::move(tuple));
  }

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condition() : parse_or(); }

  ExprPtr parse_condition() {
    DepthGuard guard(*this);
    size_t unknown_before = unknown_.size();
    ExprPtr expr = parse_or();
    while (is_name("if")) {
      int line = next().line;
      // jinja2 compiles a conditional expression in a "soft" frame: unknown filters fail only when reached.
      for (size_t i = unknown_before; i < unknown_.size(); ++i) soft_nodes_.insert(unknown_[i]);
      Saved<bool> soft(soft_, true);
      auto node = make(Expr::Kind::kCondition, line);
      node->children.push_back(std::move(expr));
      node->children.push_back(parse_or());
      node->children.push_back(skip_name("else") ? parse_condition() : nullptr);
      expr = checked(std::move(node));
    }
    return expr;
  }

  ExprPtr binary(Expr::Kind kind, ExprPtr left, ExprPtr right, int line) {
    auto node = make(kind, line);
    node->children.push_back(std::move(left));
    node->children.push_back(std::move(right));
    return checked(std::move(node));
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (is_name("or")) {
      int line = next().line;
      left = binary(Expr::Kind::kOr, std::move(left), parse_and(), line);
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (is_name("and")) {
      int line = next().line;
      left = binary(Expr::Kind::kAnd, std::move(left), parse_not(), line);
    }
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      DepthGuard guard(*this);
      auto node = make(Expr::Kind::kNot, next().line);
      node->children.push_back(parse_not());
      return checked(std::move(node));
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = current().line;
    ExprPtr first = parse_math1();
    auto node = make(Expr::Kind::kCompare, line);
    node->children.push_back(std::move(first));
    while (true) {
      static const std::pair<const char*, CompareOp> kOps[] = {{"==", CompareOp::kEq}, {"!=", CompareOp::kNe},
                                                               {"<", CompareOp::kLt},  {"<=", CompareOp::kLe},
                                                               {">", CompareOp::kGt},  {">=", CompareOp::kGe}};
      const std::pair<const char*, CompareOp>* found = nullptr;
      for (const auto& op : kOps) {
        if (is_op(op.first)) found = &op;
      }
      if (found) {
        next();
        node->compare_ops.push_back(found->second);
      } else if (is_name("in")) {
        next();
        node->compare_ops.push_back(CompareOp::kIn);
      } else if (is_name("not") && peek().type == TokenType::kName && peek().value == "in") {
        next();
        next();
        node->compare_ops.push_back(CompareOp::kNotIn);
      } else {
        break;
      }
      node->children.push_back(parse_math1());
    }
    if (node->compare_ops.empty()) return std::move(node->children[0]);
    return checked(std::move(node));
  }

  ExprPtr arithmetic_node(BinaryOp op, ExprPtr left, ExprPtr right, int line) {
    auto node = make(Expr::Kind::kBinary, line);
    node->binary_op = op;
    node->children.push_back(std::move(left));
    node->children.push_back(std::move(right));
    return checked(std::move(node));
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      BinaryOp op = is_op("+") ? BinaryOp::kAdd : BinaryOp::kSub;
      int line = next().line;
      left = arithmetic_node(op, std::move(left), parse_concat(), line);
    }
    return left;
  }

  ExprPtr parse_concat() {
    int line = current().line;
    ExprPtr first = parse_math2();
    if (!is_op("~")) return first;
    auto node = make(Expr::Kind::kConcat, line);
    node->children.push_back(std::move(first));
    while (skip_op("~")) node->children.push_back(parse_math2());
    return checked(std::move(node));
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (true) {
      BinaryOp op;
      if (is_op("*")) {
        op = BinaryOp::kMul;
      } else if (is_op("/")) {
        op = BinaryOp::kDiv;
      } else if (is_op("//")) {
        op = BinaryOp::kFloorDiv;
      } else if (is_op("%")) {
        op = BinaryOp::kMod;
      } else {
        return left;
      }
      int line = next().line;
      left = arithmetic_node(op, std::move(left), parse_pow(), line);
    }
  }

  ExprPtr parse_pow() {  // left-associative in jinja2: 2 ** 3 ** 2 == 64
    ExprPtr left = parse_unary(true);
    while (is_op("**")) {
      int line = next().line;
      left = arithmetic_node(BinaryOp::kPow, std::move(left), parse_unary(true), line);
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(*this);
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      bool minus = is_op("-");
      node = make(minus ? Expr::Kind::kNegate : Expr::Kind::kPlus, next().line);
      node->children.push_back(parse_unary(false));
      node = checked(std::move(node));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expression(std::move(node));
    return node;
  }

  ExprPtr literal(Value value, int line) {
    auto node = make(Expr::Kind::kLiteral, line);
    node->value = std::move(value);
    return checked(std::move(node));
  }

  ExprPtr parse_primary() {
    DepthGuard guard(*this);
    const Token& token = current();
    int line = token.line;
    switch (token.type) {
      case TokenType::kName: {
        std::string name = next().value;
        if (name == "true" || name == "True") return literal(Value(true), line);
        if (name == "false" || name == "False") return literal(Value(false), line);
        if (name == "none" || name == "None") return literal(Value::none(), line);
        auto node = make(Expr::Kind::kName, line);
        node->name = name;
        return checked(std::move(node));
      }
      case TokenType::kString: {
        std::string text;
        while (current().type == TokenType::kString) text += next().value;  // "a" "b" is "ab", as in Python
        return literal(Value(std::move(text)), line);
      }
      case TokenType::kInteger:
        return literal(Value(parse_integer(next().value, line)), line);
      case TokenType::kFloat: {
        std::string text = next().value;
        text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
        return literal(Value(std::strtod(text.c_str(), nullptr)), line);
      }
      case TokenType::kOperator:
        if (token.value == "(") {
          next();
          ExprPtr inner = parse_tuple(false, true, {}, true);
          expect_op(")");
          return inner;
        }
        if (token.value == "[") return parse_list();
        if (token.value == "{") return parse_dict();
        break;
      default:
        break;
    }
    fail("unexpected " + describe(token));
  }

  int64_t parse_integer(std::string text, int line) {
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    int base = 10;
    if (text.size() > 1 && text[0] == '0') {
      char prefix = static_cast<char>(text[1] | 0x20);
      base = prefix == 'x' ? 16 : prefix == 'o' ? 8 : prefix == 'b' ? 2 : 10;
      if (base != 10) text.erase(0, 2);
    }
    errno = 0;
    long long value = std::strtoll(text.c_str(), nullptr, base);
    if (errno == ERANGE) syntax_error(name_, line, "integer literal too large (past 64 bits)");
    return value;
  }

  ExprPtr parse_list() {
    auto node = make(Expr::Kind::kList, next().line);
    while (!is_op("]")) {
      if (!node->children.empty()) expect_op(",");
      if (is_op("]")) break;
      node->children.push_back(parse_expression(true));
    }
    expect_op("]");
    return checked(std::move(node));
  }

  ExprPtr parse_dict() {
    auto node = make(Expr::Kind::kDict, next().line);
    while (!is_op("}")) {
      if (!node->children.empty()) expect_op(",");
      if (is_op("}")) break;
      node->children.push_back(parse_expression(true));
      expect_op(":");
      node->children.push_back(parse_expression(true));
    }
    expect_op("}");
    return checked(std::move(node));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".") || is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expression(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        node = parse_filters(std::move(node));
      } else if (is_name("is")) {
        node = parse_test(std::move(node));
      } else if (is_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    int line = current().line;
    if (skip_op(".")) {
      const Token& token = current();
      if (token.type == TokenType::kName) {
        auto attribute = make(Expr::Kind::kAttribute, line);
        attribute->name = next().value;
        attribute->children.push_back(std::move(node));
        return checked(std::move(attribute));
      }
      if (token.type == TokenType::kInteger) {  // `items.0` is items[0]
        auto item = make(Expr::Kind::kItem, line);
        item->children.push_back(std::move(node));
        item->children.push_back(literal(Value(parse_integer(next().value, line)), line));
        return checked(std::move(item));
      }
      fail("expected a name or number after '.', got " + describe(token));
    }
    next();  // [
    std::vector<ExprPtr> args;
    while (!is_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    if (args.empty()) fail("expected a subscript inside '[]'");
    ExprPtr key;
    if (args.size() == 1) {
      key = std::move(args[0]);
    } else {
      key = make(Expr::Kind::kTuple, line);
      for (auto& arg : args) {
        if (arg->kind == Expr::Kind::kSlice) fail("a slice inside a tuple subscript is not supported");
        key->children.push_back(std::move(arg));
      }
      key = checked(std::move(key));
    }
    if (key->kind == Expr::Kind::kSlice) {
      key->children[0] = std::move(node);
      return checked(std::move(key));
    }
    auto item = make(Expr::Kind::kItem, line);
    item->children.push_back(std::move(node));
    item->children.push_back(std::move(key));
    return checked(std::move(item));
  }

  // One subscript: an expression, or a slice `start:stop:step` (a kSlice whose children[0] the caller fills).
  ExprPtr parse_subscribed() {
    int line = current().line;
    ExprPtr start;
    if (!skip_op(":")) {
      ExprPtr expr = parse_expression(true);
      if (!skip_op(":")) return expr;
      start = std::move(expr);
    }
    auto at_bound_end = [this] { return is_op("]") || is_op(","); };
    auto slice = make(Expr::Kind::kSlice, line);
    slice->children.push_back(nullptr);
    slice->children.push_back(std::move(start));
    slice->children.push_back(is_op(":") || at_bound_end() ? nullptr : parse_expression(true));
    ExprPtr step;
    if (skip_op(":") && !at_bound_end()) step = parse_expression(true);
    slice->children.push_back(std::move(step));
    return slice;
  }

  void parse_call_args(Expr& node) {
    expect_op("(");
    bool require_comma = false;
    while (!is_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (is_op(")")) break;
      }
      if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
      if (current().type == TokenType::kName && peek().type == TokenType::kOperator && peek().value == "=") {
        std::string key = next().value;
        next();
        node.keywords.emplace_back(key, parse_expression(true));
      } else {
        if (!node.keywords.empty()) fail("a positional argument follows a keyword argument");
        node.children.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto node = make(Expr::Kind::kCall, current().line);
    node->children.push_back(std::move(callee));
    parse_call_args(*node);
    return checked(std::move(node));
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (skip_op(".")) name += "." + expect_name();
    return name;
  }

  void note_unknown(Expr* node) {
    unknown_.push_back(node);
    if (soft_) soft_nodes_.insert(node);
  }

  // `subject | f | g(args)`; a null subject is a block set's body, filled in at render time.
  ExprPtr parse_filters(ExprPtr subject) {
    while (skip_op("|")) {
      auto node = make(Expr::Kind::kFilter, current().line);
      node->name = dotted_name();
      node->known = has_filter(node->name);
      node->children.push_back(std::move(subject));
      if (is_op("(")) parse_call_args(*node);
      if (!node->known) note_unknown(node.get());
      subject = checked(std::move(node));
    }
    return subject;
  }

  ExprPtr parse_test(ExprPtr subject) {
    auto node = make(Expr::Kind::kTest, next().line);
    node->negated = skip_name("not");
    node->name = dotted_name();
    node->known = has_test(node->name);
    node->children.push_back(std::move(subject));
    const Token& token = current();
    bool argument_follows = token.type == TokenType::kName || token.type == TokenType::kString ||
                            token.type == TokenType::kInteger || token.type == TokenType::kFloat || is_op("[") ||
                            is_op("{");
    if (is_op("(")) {
      parse_call_args(*node);
    } else if (argument_follows && !is_name("else") && !is_name("or") && !is_name("and")) {
      if (is_name("is")) fail("tests cannot be chained with 'is'");
      node->children.push_back(parse_postfix(parse_primary()));  // `x is divisibleby 3`, `x is sameas none`
    }
    if (!node->known) note_unknown(node.get());
    return checked(std::move(node));
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  const std::string& name_;
  int depth_ = 0;
  int loop_depth_ = 0;    // break/continue are valid inside a for loop's body only
  int buffer_depth_ = 0;  // inside a macro, a set block or a generation block
  bool soft_ = false;     // inside an if statement: unknown filters and tests fail when reached, not here
  bool has_generation_ = false;
  std::vector<OpenBlock> open_;
  std::vector<const Expr*> unknown_;
  std::unordered_set<const Expr*> soft_nodes_;
};

}  // namespace

Body parse(const std::string& source, const std::string& name, bool* has_generation_blocks) {
  Parser parser(tokenize(source, name), name);
  Body body = parser.parse_template();
  if (has_generation_blocks) *has_generation_blocks = parser.has_generation();
  return body;
}

}  // namespace peft::jinja
