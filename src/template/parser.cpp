#include "template/parser.h"

#include <algorithm>
#include <initializer_list>

#include "template/filters.h"
#include "template/jinja_tests.h"
#include "template/lexer.h"

namespace tandem::tmpl {
namespace {

// Describes an end-token expectation the way Jinja prints it: "name:endfor" -> 'endfor'.
std::string describe_expected(std::string_view expr) {
  if (expr.rfind("name:", 0) == 0) return std::string(expr.substr(5));
  return std::string(expr);
}

class Parser {
 public:
  Parser(std::vector<Token> tokens, int max_nesting)
      : tokens_(std::move(tokens)), max_nesting_(max_nesting) {}

  TemplateAst parse() {
    TemplateAst ast;
    ast.body = subparse(nullptr);
    return ast;
  }

 private:
  using EndTokens = std::vector<std::string>;  // tag names ending the current body

  // ------------------------------------------------------------ token stream

  const Token& current() const { return tokens_[pos_]; }
  const Token& look() const { return tokens_[std::min(pos_ + 1, tokens_.size() - 1)]; }
  const Token& next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool at_eof() const { return current().type == TokenType::kEof; }

  static bool is_op(const Token& t, std::string_view op) {
    return t.type == TokenType::kOperator && t.value == op;
  }
  static bool is_name(const Token& t, std::string_view name) {
    return t.type == TokenType::kName && t.value == name;
  }
  bool cur_op(std::string_view op) const { return is_op(current(), op); }
  bool cur_name(std::string_view name) const { return is_name(current(), name); }

  bool skip_op(std::string_view op) {
    if (!cur_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!cur_name(name)) return false;
    next();
    return true;
  }

  [[noreturn]] void fail(const std::string& message, SourcePos pos) const {
    RenderError e("TemplateSyntaxError", message);
    e.set_pos(pos);
    throw e;
  }
  [[noreturn]] void fail(const std::string& message) const { fail(message, current().pos); }

  [[noreturn]] void fail_expected(const std::string& expected) const {
    if (at_eof()) fail(fmt::format("unexpected end of template, expected '{}'.", expected));
    fail(fmt::format("expected token '{}', got '{}'", expected, describe_token(current())));
  }

  const Token& expect_op(std::string_view op) {
    if (!cur_op(op)) fail_expected(std::string(op));
    return next();
  }
  const Token& expect_name() {
    if (current().type != TokenType::kName) fail_expected("name");
    return next();
  }
  const Token& expect_name(std::string_view name) {
    if (!cur_name(name)) fail_expected(std::string(name));
    return next();
  }
  void expect_type(TokenType type, const char* description) {
    if (current().type != type) fail_expected(description);
    next();
  }
  void expect_block_end() { expect_type(TokenType::kBlockEnd, "end of statement block"); }

  bool test_any(const EndTokens* names) const {
    if (names == nullptr || current().type != TokenType::kName) return false;
    return std::find(names->begin(), names->end(), current().value) != names->end();
  }

  // One level of the parser's recursion (a block inside a block; an operand, so one per parenthesis, bracket,
  // call or unary operator; a `not`; an `else` arm): bounded by TemplateLimits::max_nesting so that no
  // template can overflow the stack here or, later, in the renderer, which recurses along the same tree.
  struct NestGuard {
    explicit NestGuard(Parser& parser) : p(parser) {
      if (++p.nesting_ > p.max_nesting_)
        p.fail(fmt::format("the template nests deeper than {} levels (TemplateLimits::max_nesting)",
                           p.max_nesting_));
    }
    ~NestGuard() { --p.nesting_; }
    NestGuard(const NestGuard&) = delete;
    NestGuard& operator=(const NestGuard&) = delete;
    Parser& p;
  };

  // ------------------------------------------------------------ statements

  Body subparse(const EndTokens* end_tokens) {
    const NestGuard nest(*this);
    Body body;
    std::unique_ptr<OutputStmt> output;
    auto flush = [&] {
      if (output) body.push_back(std::move(output));
      output.reset();
    };
    auto out = [&]() -> OutputStmt& {
      if (!output) output = std::make_unique<OutputStmt>(current().pos);
      return *output;
    };
    if (end_tokens) end_token_stack_.push_back(*end_tokens);
    while (!at_eof()) {
      const Token& t = current();
      if (t.type == TokenType::kData) {
        out().parts.push_back({t.value, nullptr});
        next();
      } else if (t.type == TokenType::kVariableBegin) {
        next();
        ExprPtr e = parse_tuple(/*simplified=*/false, /*with_condexpr=*/true, nullptr, false);
        out().parts.push_back({"", std::move(e)});
        expect_type(TokenType::kVariableEnd, "end of print statement");
      } else if (t.type == TokenType::kBlockBegin) {
        flush();
        next();
        if (test_any(end_tokens)) {
          end_token_stack_.pop_back();
          return body;
        }
        StmtPtr stmt = parse_statement();
        if (stmt) body.push_back(std::move(stmt));
        expect_block_end();
      } else {
        fail(fmt::format("unexpected '{}'", describe_token(t)));
      }
    }
    flush();
    if (end_tokens) end_token_stack_.pop_back();
    return body;
  }

  // Jinja's _fail_ut_eof: unknown tag or end of template while looking for end tags.
  [[noreturn]] void fail_unknown_tag(const std::string* name, SourcePos pos, const EndTokens* extra) const {
    std::vector<EndTokens> stack = end_token_stack_;
    if (extra) stack.push_back(*extra);
    std::string message =
        name ? fmt::format("Encountered unknown tag '{}'.", *name) : "Unexpected end of template.";
    if (!stack.empty()) {
      std::string looking;
      for (const std::string& n : stack.back()) {
        if (!looking.empty()) looking += " or ";
        looking += "'" + describe_expected(n) + "'";
      }
      bool expected_somewhere = false;
      for (const EndTokens& level : stack) {
        if (name && std::find(level.begin(), level.end(), *name) != level.end()) expected_somewhere = true;
      }
      if (expected_somewhere) {
        message += fmt::format(
            " You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for "
            "{}.",
            looking);
      } else {
        message += fmt::format(" Jinja was looking for the following tags: {}.", looking);
      }
    }
    if (!tag_stack_.empty()) {
      message += fmt::format(" The innermost block that needs to be closed is '{}'.", tag_stack_.back());
    }
    fail(message, pos);
  }

  Body parse_statements(const EndTokens& end_tokens, bool drop_needle) {
    skip_op(":");
    expect_block_end();
    Body body = subparse(&end_tokens);
    if (at_eof()) fail_unknown_tag(nullptr, current().pos, &end_tokens);
    if (drop_needle) next();
    return body;
  }

  StmtPtr parse_statement() {
    const Token& token = current();
    if (token.type != TokenType::kName) fail("tag name expected");
    const std::string tag = token.value;
    const SourcePos pos = token.pos;
    static const std::initializer_list<std::string_view> kKnown = {
        "for",   "if",       "set",     "macro",   "call",   "filter", "with",       "block",     "print",
        "break", "continue", "extends", "include", "import", "from",   "autoescape", "generation"};
    if (std::find(kKnown.begin(), kKnown.end(), tag) == kKnown.end()) fail_unknown_tag(&tag, pos, nullptr);
    tag_stack_.push_back(tag);
    StmtPtr stmt;
    if (tag == "for") {
      stmt = parse_for();
    } else if (tag == "if") {
      stmt = parse_if();
    } else if (tag == "set") {
      stmt = parse_set();
    } else if (tag == "macro") {
      stmt = parse_macro();
    } else if (tag == "call") {
      stmt = parse_call_block();
    } else if (tag == "filter") {
      stmt = parse_filter_block();
    } else if (tag == "with") {
      stmt = parse_with();
    } else if (tag == "block") {
      stmt = parse_block();
    } else if (tag == "generation") {
      // Hugging Face's AssistantTracker extension: marks assistant text; renders its body unchanged.
      next();
      auto s = std::make_unique<ScopeStmt>(pos);
      s->body = parse_statements({"endgeneration"}, true);
      stmt = std::move(s);
    } else if (tag == "print") {
      stmt = parse_print();
    } else if (tag == "break" || tag == "continue") {
      next();
      if (loop_depth_ == 0) fail(fmt::format("'{}' outside loop", tag), pos);
      stmt = std::make_unique<Stmt>(tag == "break" ? StmtKind::kBreak : StmtKind::kContinue, pos);
    } else {
      stmt = parse_loader_statement(tag, pos);
    }
    tag_stack_.pop_back();
    return stmt;
  }

  // Soft frames (Jinja compiler): inside if-statements and conditional expressions an unknown filter or
  // test is a runtime error; everywhere else it is a compile-time error. Loops, macros, call/filter/set
  // blocks and with-blocks start a new, non-soft frame.
  struct FrameGuard {
    FrameGuard(Parser& p, bool soft, bool in_loop)
        : parser(p), saved_soft(p.soft_), saved_loop(p.loop_depth_) {
      parser.soft_ = soft;
      parser.loop_depth_ = in_loop ? parser.loop_depth_ + 1 : 0;
    }
    ~FrameGuard() {
      parser.soft_ = saved_soft;
      parser.loop_depth_ = saved_loop;
    }
    Parser& parser;
    bool saved_soft;
    int saved_loop;
  };

  StmtPtr parse_for() {
    auto s = std::make_unique<ForStmt>(next().pos);
    static const EndTokens kIn = {"in"};
    s->target = parse_assign_target(true, false, &kIn, false);
    expect_name("in");
    static const EndTokens kRecursive = {"recursive"};
    s->iter = parse_tuple(false, /*with_condexpr=*/false, &kRecursive, false);
    {
      FrameGuard frame(*this, false, false);
      if (skip_name("if")) s->filter = parse_expression(true);
    }
    s->recursive = skip_name("recursive");
    {
      FrameGuard frame(*this, false, true);
      s->body = parse_statements({"endfor", "else"}, false);
    }
    if (next().value == "endfor") return s;
    FrameGuard frame(*this, false, loop_depth_ > 0);
    s->else_body = parse_statements({"endfor"}, true);
    return s;
  }

  StmtPtr parse_if() {
    auto s = std::make_unique<IfStmt>(next().pos);
    const bool saved = soft_;
    soft_ = true;
    for (;;) {
      ExprPtr test = parse_tuple(false, false, nullptr, false);
      Body body = parse_statements({"elif", "else", "endif"}, false);
      s->branches.emplace_back(std::move(test), std::move(body));
      const Token& t = next();
      if (t.value == "elif") continue;
      if (t.value == "else") s->else_body = parse_statements({"endif"}, true);
      break;
    }
    soft_ = saved;
    return s;
  }

  StmtPtr parse_set() {
    const SourcePos pos = next().pos;
    Target target = parse_assign_target(true, false, nullptr, true);
    if (skip_op("=")) {
      auto s = std::make_unique<SetStmt>(pos);
      s->target = std::move(target);
      s->value = parse_tuple(false, true, nullptr, false);
      return s;
    }
    auto s = std::make_unique<SetBlockStmt>(pos);
    s->target = std::move(target);
    // Jinja compiles set/filter/with block bodies inline, so break/continue still reach an enclosing loop.
    FrameGuard frame(*this, false, loop_depth_ > 0);
    s->filters = parse_filter_chain(false);
    s->body = parse_statements({"endset"}, true);
    return s;
  }

  void parse_signature(MacroDef& def) {
    expect_op("(");
    while (!cur_op(")")) {
      if (!def.params.empty()) expect_op(",");
      const Token& name = expect_name();
      def.params.push_back(name.value);
      if (skip_op("=")) {
        def.defaults.push_back(parse_expression(true));
      } else if (!def.defaults.empty()) {
        fail("non-default argument follows default argument");
      }
    }
    expect_op(")");
  }

  // Parses a macro-like body, recording whether it refers to caller/varargs/kwargs.
  void parse_macro_body(MacroDef& def, const char* end_tag) {
    FrameGuard frame(*this, false, false);
    macro_stack_.push_back(&def);
    def.body = parse_statements({end_tag}, true);
    macro_stack_.pop_back();
  }

  StmtPtr parse_macro() {
    auto s = std::make_unique<MacroStmt>(next().pos);
    s->def.name = expect_name().value;
    {
      FrameGuard frame(*this, false, false);
      macro_stack_.push_back(&s->def);
      parse_signature(s->def);
      macro_stack_.pop_back();
    }
    parse_macro_body(s->def, "endmacro");
    return s;
  }

  StmtPtr parse_call_block() {
    auto s = std::make_unique<CallBlockStmt>(next().pos);
    s->caller.name = "caller";
    if (cur_op("(")) parse_signature(s->caller);
    const SourcePos call_pos = current().pos;
    ExprPtr call = parse_expression(true);
    if (call->kind != ExprKind::kCall) fail("expected call", call_pos);
    s->call.reset(static_cast<CallExpr*>(call.release()));
    parse_macro_body(s->caller, "endcall");
    return s;
  }

  StmtPtr parse_filter_block() {
    auto s = std::make_unique<FilterBlockStmt>(next().pos);
    FrameGuard frame(*this, false, loop_depth_ > 0);
    s->filters = parse_filter_chain(true);
    s->body = parse_statements({"endfilter"}, true);
    return s;
  }

  StmtPtr parse_with() {
    auto s = std::make_unique<WithStmt>(next().pos);
    while (current().type != TokenType::kBlockEnd) {
      if (!s->targets.empty()) expect_op(",");
      s->targets.push_back(parse_assign_target(true, false, nullptr, false));
      expect_op("=");
      s->values.push_back(parse_expression(true));
    }
    FrameGuard frame(*this, false, loop_depth_ > 0);
    s->body = parse_statements({"endwith"}, true);
    return s;
  }

  StmtPtr parse_block() {
    auto s = std::make_unique<ScopeStmt>(next().pos);
    const std::string name = expect_name().value;
    skip_name("scoped");
    skip_name("required");
    if (cur_op("-")) {
      fail(
          "Block names in Jinja have to be valid Python identifiers and may not contain hyphens, use an "
          "underscore instead.");
    }
    {
      FrameGuard frame(*this, false, false);
      s->body = parse_statements({"endblock"}, true);
    }
    skip_name(name);
    return s;
  }

  StmtPtr parse_print() {
    auto s = std::make_unique<OutputStmt>(next().pos);
    while (current().type != TokenType::kBlockEnd) {
      if (!s->parts.empty()) expect_op(",");
      s->parts.push_back({"", parse_expression(true)});
    }
    return s;
  }

  // extends / include / import / from / autoescape: parsed like Jinja, failing when executed.
  StmtPtr parse_loader_statement(const std::string& tag, SourcePos pos) {
    next();
    if (tag == "autoescape") {
      parse_expression(true);
      FrameGuard frame(*this, false, false);
      parse_statements({"endautoescape"}, true);
      return std::make_unique<UnsupportedStmt>(
          pos, "TemplateError", "{% autoescape %} blocks are not supported by this interpreter");
    }
    // The argument syntax varies (names, `as`, `with context`, `ignore missing`): consume it up to the end
    // of the tag; Hugging Face's environment has no loader, so executing any of these fails anyway.
    while (current().type != TokenType::kBlockEnd && !at_eof()) next();
    return std::make_unique<UnsupportedStmt>(pos, "TypeError", "no loader for this environment specified");
  }

  Target parse_assign_target(bool with_tuple, bool name_only, const EndTokens* extra_end,
                             bool with_namespace) {
    Target target;
    target.pos = current().pos;
    if (with_namespace && current().type == TokenType::kName && is_op(look(), ".")) {
      target.kind = Target::Kind::kNamespaceAttr;
      target.name = next().value;
      next();
      target.attr = expect_name().value;
      return target;
    }
    if (name_only) {
      target.name = expect_name().value;
      return target;
    }
    ExprPtr e = with_tuple ? parse_tuple(/*simplified=*/true, true, extra_end, false) : parse_primary();
    return to_target(*e);
  }

  Target to_target(const Expr& e) {
    Target t;
    t.pos = e.pos;
    if (e.kind == ExprKind::kName) {
      t.name = static_cast<const NameExpr&>(e).name;
      return t;
    }
    if (e.kind == ExprKind::kList && static_cast<const ListExpr&>(e).is_tuple) {
      t.kind = Target::Kind::kTuple;
      for (const ExprPtr& item : static_cast<const ListExpr&>(e).items) t.items.push_back(to_target(*item));
      return t;
    }
    const char* what = e.kind == ExprKind::kLiteral ? "const"
                       : e.kind == ExprKind::kList  ? "list"
                       : e.kind == ExprKind::kDict  ? "dict"
                                                    : "expression";
    fail(fmt::format("can't assign to '{}'", what), e.pos);
  }

  // ------------------------------------------------------------ expressions

  ExprPtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

  ExprPtr parse_condexpr() {
    SourcePos pos = current().pos;
    ExprPtr expr1 = parse_or();
    while (cur_name("if")) {
      const bool saved = soft_;
      soft_ = true;
      next();
      auto c = std::make_unique<CondExpr>(pos);
      c->then = std::move(expr1);
      c->test = parse_or();
      if (skip_name("else")) {
        const NestGuard nest(*this);
        c->otherwise = parse_condexpr();
      }
      soft_ = saved;
      expr1 = std::move(c);
      pos = current().pos;
    }
    return expr1;
  }

  ExprPtr parse_or() {
    SourcePos pos = current().pos;
    ExprPtr left = parse_and();
    while (skip_name("or")) {
      left = std::make_unique<BinaryExpr>(pos, BinaryOp::kOr, std::move(left), parse_and());
      pos = current().pos;
    }
    return left;
  }

  ExprPtr parse_and() {
    SourcePos pos = current().pos;
    ExprPtr left = parse_not();
    while (skip_name("and")) {
      left = std::make_unique<BinaryExpr>(pos, BinaryOp::kAnd, std::move(left), parse_not());
      pos = current().pos;
    }
    return left;
  }

  ExprPtr parse_not() {
    if (cur_name("not")) {
      const NestGuard nest(*this);
      const SourcePos pos = next().pos;
      return std::make_unique<UnaryExpr>(pos, UnaryOp::kNot, parse_not());
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const SourcePos pos = current().pos;
    ExprPtr expr = parse_math1();
    std::unique_ptr<CompareExpr> cmp;
    for (;;) {
      CompareOp op;
      const Token& t = current();
      if (t.type == TokenType::kOperator && (t.value == "==" || t.value == "!=" || t.value == "<" ||
                                             t.value == "<=" || t.value == ">" || t.value == ">=")) {
        op = t.value == "=="   ? CompareOp::kEq
             : t.value == "!=" ? CompareOp::kNe
             : t.value == "<"  ? CompareOp::kLt
             : t.value == "<=" ? CompareOp::kLe
             : t.value == ">"  ? CompareOp::kGt
                               : CompareOp::kGe;
        next();
      } else if (cur_name("in")) {
        op = CompareOp::kIn;
        next();
      } else if (cur_name("not") && is_name(look(), "in")) {
        op = CompareOp::kNotIn;
        next();
        next();
      } else {
        break;
      }
      if (!cmp) cmp = std::make_unique<CompareExpr>(pos, std::move(expr));
      cmp->ops.emplace_back(op, parse_math1());
    }
    if (cmp) return cmp;
    return expr;
  }

  ExprPtr parse_math1() {
    SourcePos pos = current().pos;
    ExprPtr left = parse_concat();
    while (cur_op("+") || cur_op("-")) {
      const BinaryOp op = next().value == "+" ? BinaryOp::kAdd : BinaryOp::kSub;
      left = std::make_unique<BinaryExpr>(pos, op, std::move(left), parse_concat());
      pos = current().pos;
    }
    return left;
  }

  ExprPtr parse_concat() {
    const SourcePos pos = current().pos;
    ExprPtr first = parse_math2();
    if (!cur_op("~")) return first;
    auto c = std::make_unique<ConcatExpr>(pos);
    c->items.push_back(std::move(first));
    while (skip_op("~")) c->items.push_back(parse_math2());
    return c;
  }

  ExprPtr parse_math2() {
    SourcePos pos = current().pos;
    ExprPtr left = parse_pow();
    while (cur_op("*") || cur_op("/") || cur_op("//") || cur_op("%")) {
      const std::string& v = next().value;
      const BinaryOp op = v == "*"    ? BinaryOp::kMul
                          : v == "/"  ? BinaryOp::kDiv
                          : v == "//" ? BinaryOp::kFloorDiv
                                      : BinaryOp::kMod;
      left = std::make_unique<BinaryExpr>(pos, op, std::move(left), parse_pow());
      pos = current().pos;
    }
    return left;
  }

  ExprPtr parse_pow() {
    SourcePos pos = current().pos;
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) {
      left = std::make_unique<BinaryExpr>(pos, BinaryOp::kPow, std::move(left), parse_unary(true));
      pos = current().pos;
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    const NestGuard nest(*this);
    const SourcePos pos = current().pos;
    ExprPtr node;
    if (skip_op("-")) {
      node = std::make_unique<UnaryExpr>(pos, UnaryOp::kNeg, parse_unary(false));
    } else if (skip_op("+")) {
      node = std::make_unique<UnaryExpr>(pos, UnaryOp::kPos, parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = current();
    const SourcePos pos = t.pos;
    switch (t.type) {
      case TokenType::kName: {
        const std::string name = next().value;
        if (name == "true" || name == "True") return std::make_unique<LiteralExpr>(pos, Value(true));
        if (name == "false" || name == "False") return std::make_unique<LiteralExpr>(pos, Value(false));
        if (name == "none" || name == "None") return std::make_unique<LiteralExpr>(pos, Value(None{}));
        note_name_use(name);
        return std::make_unique<NameExpr>(pos, name);
      }
      case TokenType::kString: {
        std::string text;
        while (current().type == TokenType::kString) text += next().value;
        return std::make_unique<LiteralExpr>(pos, Value(std::move(text)));
      }
      case TokenType::kInteger:
        return std::make_unique<LiteralExpr>(pos, Value(next().int_value));
      case TokenType::kFloat:
        return std::make_unique<LiteralExpr>(pos, Value(next().float_value));
      case TokenType::kOperator:
        if (t.value == "(") {
          next();
          ExprPtr e = parse_tuple(false, true, nullptr, /*explicit_parentheses=*/true);
          expect_op(")");
          return e;
        }
        if (t.value == "[") return parse_list();
        if (t.value == "{") return parse_dict();
        break;
      default:
        break;
    }
    fail(fmt::format("unexpected '{}'", describe_token(t)));
  }

  void note_name_use(const std::string& name) {
    if (name != "caller" && name != "varargs" && name != "kwargs") return;
    for (MacroDef* def : macro_stack_) {
      if (name == "caller") def->uses_caller = true;
      if (name == "varargs") def->uses_varargs = true;
      if (name == "kwargs") def->uses_kwargs = true;
    }
  }

  bool is_tuple_end(const EndTokens* extra_end) const {
    const Token& t = current();
    if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd || is_op(t, ")")) return true;
    return test_any(extra_end);
  }

  ExprPtr parse_tuple(bool simplified, bool with_condexpr, const EndTokens* extra_end,
                      bool explicit_parentheses) {
    SourcePos pos = current().pos;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    for (;;) {
      if (!args.empty()) expect_op(",");
      if (is_tuple_end(extra_end)) break;
      args.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
      if (cur_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
      pos = current().pos;
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parentheses) {
        fail(fmt::format("Expected an expression, got '{}'", describe_token(current())));
      }
    }
    auto t = std::make_unique<ListExpr>(pos, true);
    t->items = std::move(args);
    return t;
  }

  ExprPtr parse_list() {
    auto l = std::make_unique<ListExpr>(expect_op("[").pos, false);
    while (!cur_op("]")) {
      if (!l->items.empty()) expect_op(",");
      if (cur_op("]")) break;
      l->items.push_back(parse_expression(true));
    }
    expect_op("]");
    return l;
  }

  ExprPtr parse_dict() {
    auto d = std::make_unique<DictExpr>(expect_op("{").pos);
    while (!cur_op("}")) {
      if (!d->items.empty()) expect_op(",");
      if (cur_op("}")) break;
      ExprPtr key = parse_expression(true);
      expect_op(":");
      d->items.emplace_back(std::move(key), parse_expression(true));
    }
    expect_op("}");
    return d;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    for (;;) {
      if (cur_op(".") || cur_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (cur_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    for (;;) {
      if (cur_op("|")) {
        node = parse_filter(std::move(node));
      } else if (cur_name("is")) {
        node = parse_test(std::move(node));
      } else if (cur_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const Token& t = next();
    const SourcePos pos = t.pos;
    if (t.value == ".") {
      const Token& attr = current();
      next();
      if (attr.type == TokenType::kName)
        return std::make_unique<GetattrExpr>(pos, std::move(node), attr.value);
      if (attr.type != TokenType::kInteger) fail("expected name or number", attr.pos);
      return std::make_unique<GetitemExpr>(pos, std::move(node),
                                           std::make_unique<LiteralExpr>(attr.pos, Value(attr.int_value)));
    }
    std::vector<ExprPtr> args;
    while (!cur_op("]")) {
      if (!args.empty()) expect_op(",");
      args.push_back(parse_subscribed());
    }
    expect_op("]");
    if (args.size() == 1) return std::make_unique<GetitemExpr>(pos, std::move(node), std::move(args[0]));
    auto tuple = std::make_unique<ListExpr>(pos, true);
    tuple->items = std::move(args);
    return std::make_unique<GetitemExpr>(pos, std::move(node), std::move(tuple));
  }

  ExprPtr parse_subscribed() {
    const SourcePos pos = current().pos;
    auto slice = std::make_unique<SliceExpr>(pos);
    if (cur_op(":")) {
      next();
    } else {
      ExprPtr e = parse_expression(true);
      if (!cur_op(":")) return e;
      next();
      slice->start = std::move(e);
    }
    if (!cur_op(":") && !cur_op("]") && !cur_op(",")) slice->stop = parse_expression(true);
    if (cur_op(":")) {
      next();
      if (!cur_op("]") && !cur_op(",")) slice->step = parse_expression(true);
    }
    return slice;
  }

  ArgExprs parse_call_args() {
    const SourcePos pos = expect_op("(").pos;
    ArgExprs a;
    bool require_comma = false;
    auto ensure = [&](bool ok) {
      if (!ok) fail("invalid syntax for function call expression", pos);
    };
    while (!cur_op(")")) {
      if (require_comma) {
        expect_op(",");
        if (cur_op(")")) break;
      }
      if (cur_op("*")) {
        ensure(!a.dyn_args && !a.dyn_kwargs);
        next();
        a.dyn_args = parse_expression(true);
      } else if (cur_op("**")) {
        ensure(!a.dyn_kwargs);
        next();
        a.dyn_kwargs = parse_expression(true);
      } else if (current().type == TokenType::kName && is_op(look(), "=")) {
        ensure(!a.dyn_kwargs);
        std::string key = next().value;
        next();
        a.kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        ensure(!a.dyn_args && !a.dyn_kwargs && a.kwargs.empty());
        a.args.push_back(parse_expression(true));
      }
      require_comma = true;
    }
    expect_op(")");
    return a;
  }

  ExprPtr parse_call(ExprPtr node) {
    auto c = std::make_unique<CallExpr>(current().pos, std::move(node));
    c->args = parse_call_args();
    return c;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name().value;
    while (skip_op(".")) name += "." + expect_name().value;
    return name;
  }

  ExprPtr parse_filter(ExprPtr node) {
    while (cur_op("|")) {
      next();
      node = parse_one_filter(std::move(node));
    }
    return node;
  }

  std::unique_ptr<FilterExpr> parse_one_filter(ExprPtr operand) {
    const SourcePos pos = current().pos;
    auto f = std::make_unique<FilterExpr>(pos, std::move(operand), parse_dotted_name());
    if (cur_op("(")) f->args = parse_call_args();
    if (!has_filter(f->name)) {
      if (!soft_) fail_assertion(fmt::format("No filter named '{}'.", f->name), pos);
      f->known = false;
    }
    return f;
  }

  // Filters of {% filter %} / {% set x | ... %} blocks, in application order.
  std::vector<std::unique_ptr<FilterExpr>> parse_filter_chain(bool start_inline) {
    std::vector<std::unique_ptr<FilterExpr>> chain;
    while (cur_op("|") || start_inline) {
      if (!start_inline) next();
      start_inline = false;
      chain.push_back(parse_one_filter(nullptr));
    }
    return chain;
  }

  [[noreturn]] void fail_assertion(const std::string& message, SourcePos pos) const {
    RenderError e("TemplateAssertionError", message);
    e.set_pos(pos);
    throw e;
  }

  ExprPtr parse_test(ExprPtr node) {
    const SourcePos pos = next().pos;  // "is"
    const bool negated = skip_name("not");
    auto t = std::make_unique<TestExpr>(pos, std::move(node), parse_dotted_name());
    const Token& c = current();
    const bool arg_start = c.type == TokenType::kName || c.type == TokenType::kString ||
                           c.type == TokenType::kInteger || c.type == TokenType::kFloat || is_op(c, "[") ||
                           is_op(c, "{");
    if (cur_op("(")) {
      t->args = parse_call_args();
    } else if (arg_start && !cur_name("else") && !cur_name("or") && !cur_name("and")) {
      if (cur_name("is")) fail("You cannot chain multiple tests with is");
      t->args.args.push_back(parse_postfix(parse_primary()));
    }
    if (!has_test(t->name)) {
      if (!soft_) fail_assertion(fmt::format("No test named '{}'.", t->name), pos);
      t->known = false;
    }
    if (negated) return std::make_unique<UnaryExpr>(pos, UnaryOp::kNot, std::move(t));
    return t;
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  std::vector<std::string> tag_stack_;
  std::vector<EndTokens> end_token_stack_;
  std::vector<MacroDef*> macro_stack_;
  bool soft_ = false;
  int loop_depth_ = 0;
  int max_nesting_;
  int nesting_ = 0;
};

}  // namespace

TemplateAst parse_template(std::string_view source, const TemplateLimits& limits) {
  return Parser(tokenize(source), limits.max_nesting).parse();
}

}  // namespace tandem::tmpl
