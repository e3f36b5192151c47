// Syntax tree of a parsed template, mirroring jinja2.nodes for the constructs the interpreter supports.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "template/render_error.h"
#include "template/value.h"

namespace tandem::tmpl {

// ---------------------------------------------------------------- expressions

enum class ExprKind : uint8_t {
  kLiteral,
  kName,
  kList,  // also tuples
  kDict,
  kGetattr,
  kGetitem,
  kSlice,
  kCall,
  kFilter,
  kTest,
  kUnary,
  kBinary,
  kConcat,
  kCompare,
  kCondExpr,
};

struct Expr {
  Expr(ExprKind k, SourcePos p) : kind(k), pos(p) {}
  virtual ~Expr() = default;
  ExprKind kind;
  SourcePos pos;
};
using ExprPtr = std::unique_ptr<Expr>;

struct LiteralExpr : Expr {
  LiteralExpr(SourcePos p, Value v) : Expr(ExprKind::kLiteral, p), value(std::move(v)) {}
  Value value;
};

struct NameExpr : Expr {
  NameExpr(SourcePos p, std::string n) : Expr(ExprKind::kName, p), name(std::move(n)) {}
  std::string name;
};

struct ListExpr : Expr {
  ListExpr(SourcePos p, bool tuple) : Expr(ExprKind::kList, p), is_tuple(tuple) {}
  std::vector<ExprPtr> items;
  bool is_tuple;
};

struct DictExpr : Expr {
  explicit DictExpr(SourcePos p) : Expr(ExprKind::kDict, p) {}
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
};

struct GetattrExpr : Expr {
  GetattrExpr(SourcePos p, ExprPtr o, std::string a)
      : Expr(ExprKind::kGetattr, p), obj(std::move(o)), attr(std::move(a)) {}
  ExprPtr obj;
  std::string attr;
};

struct GetitemExpr : Expr {
  GetitemExpr(SourcePos p, ExprPtr o, ExprPtr i)
      : Expr(ExprKind::kGetitem, p), obj(std::move(o)), index(std::move(i)) {}
  ExprPtr obj;
  ExprPtr index;  // a SliceExpr for x[a:b:c]
};

struct SliceExpr : Expr {
  explicit SliceExpr(SourcePos p) : Expr(ExprKind::kSlice, p) {}
  ExprPtr start, stop, step;  // each may be null
};

/// Arguments as written at a call site: f(a, b, k=v, *rest, **more).
struct ArgExprs {
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  ExprPtr dyn_args;
  ExprPtr dyn_kwargs;
};

struct CallExpr : Expr {
  CallExpr(SourcePos p, ExprPtr c) : Expr(ExprKind::kCall, p), callee(std::move(c)) {}
  ExprPtr callee;
  ArgExprs args;
};

/// `operand | name(args)`. operand is null for the filters of {% filter %} / {% set x | f %} blocks, which
/// apply to the rendered body. `known` is false for a filter unknown at parse time inside an if-branch or
/// conditional expression: Jinja then fails only if it runs.
struct FilterExpr : Expr {
  FilterExpr(SourcePos p, ExprPtr o, std::string n)
      : Expr(ExprKind::kFilter, p), operand(std::move(o)), name(std::move(n)) {}
  ExprPtr operand;
  std::string name;
  ArgExprs args;
  bool known = true;
};

/// `operand is name(args)`; negation is a separate `not` UnaryExpr, as in Jinja.
struct TestExpr : Expr {
  TestExpr(SourcePos p, ExprPtr o, std::string n)
      : Expr(ExprKind::kTest, p), operand(std::move(o)), name(std::move(n)) {}
  ExprPtr operand;
  std::string name;
  ArgExprs args;
  bool known = true;
};

enum class UnaryOp : uint8_t { kNot, kNeg, kPos };

struct UnaryExpr : Expr {
  UnaryExpr(SourcePos p, UnaryOp o, ExprPtr e) : Expr(ExprKind::kUnary, p), op(o), operand(std::move(e)) {}
  UnaryOp op;
  ExprPtr operand;
};

enum class BinaryOp : uint8_t { kAdd, kSub, kMul, kDiv, kFloorDiv, kMod, kPow, kAnd, kOr };

struct BinaryExpr : Expr {
  BinaryExpr(SourcePos p, BinaryOp o, ExprPtr l, ExprPtr r)
      : Expr(ExprKind::kBinary, p), op(o), left(std::move(l)), right(std::move(r)) {}
  BinaryOp op;
  ExprPtr left, right;
};

/// a ~ b ~ c
struct ConcatExpr : Expr {
  explicit ConcatExpr(SourcePos p) : Expr(ExprKind::kConcat, p) {}
  std::vector<ExprPtr> items;
};

enum class CompareOp : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn };

/// Python comparison chain: a < b <= c.
struct CompareExpr : Expr {
  CompareExpr(SourcePos p, ExprPtr f) : Expr(ExprKind::kCompare, p), first(std::move(f)) {}
  ExprPtr first;
  std::vector<std::pair<CompareOp, ExprPtr>> ops;
};

/// `then if test else otherwise`; otherwise may be null (yields Undefined).
struct CondExpr : Expr {
  explicit CondExpr(SourcePos p) : Expr(ExprKind::kCondExpr, p) {}
  ExprPtr test, then, otherwise;
};

// ---------------------------------------------------------------- statements

/// Assignment target: a name, a tuple of targets, or a namespace attribute (ns.attr).
struct Target {
  enum class Kind : uint8_t { kName, kTuple, kNamespaceAttr };
  Kind kind = Kind::kName;
  std::string name;
  std::string attr;
  std::vector<Target> items;
  SourcePos pos;
};

enum class StmtKind : uint8_t {
  kOutput,
  kFor,
  kIf,
  kSet,
  kSetBlock,
  kMacro,
  kCallBlock,
  kFilterBlock,
  kWith,
  kScope,  // {% block %} without inheritance, HF's {% generation %}: render the body in a child scope
  kBreak,
  kContinue,
  kUnsupported,
};

struct Stmt {
  Stmt(StmtKind k, SourcePos p) : kind(k), pos(p) {}
  virtual ~Stmt() = default;
  StmtKind kind;
  SourcePos pos;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

/// Template text and {{ expressions }}, in order. A part with a null expr is literal text.
struct OutputStmt : Stmt {
  explicit OutputStmt(SourcePos p) : Stmt(StmtKind::kOutput, p) {}
  struct Part {
    std::string text;
    ExprPtr expr;
  };
  std::vector<Part> parts;
};

struct ForStmt : Stmt {
  explicit ForStmt(SourcePos p) : Stmt(StmtKind::kFor, p) {}
  Target target;
  ExprPtr iter;
  ExprPtr filter;  // {% for x in xs if cond %}; may be null
  bool recursive = false;
  Body body;
  Body else_body;
};

struct IfStmt : Stmt {
  explicit IfStmt(SourcePos p) : Stmt(StmtKind::kIf, p) {}
  std::vector<std::pair<ExprPtr, Body>> branches;  // if, elif...
  Body else_body;
};

struct SetStmt : Stmt {
  explicit SetStmt(SourcePos p) : Stmt(StmtKind::kSet, p) {}
  Target target;
  ExprPtr value;
};

/// A macro signature and body; shared by {% macro %} and the `caller` of {% call %}.
struct MacroDef {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  Body body;
  bool uses_caller = false;
  bool uses_varargs = false;
  bool uses_kwargs = false;
};

/// {% set x | filters %}...{% endset %}
struct SetBlockStmt : Stmt {
  explicit SetBlockStmt(SourcePos p) : Stmt(StmtKind::kSetBlock, p) {}
  Target target;
  std::vector<std::unique_ptr<FilterExpr>> filters;  // applied in order to the rendered body
  Body body;
};

struct MacroStmt : Stmt {
  explicit MacroStmt(SourcePos p) : Stmt(StmtKind::kMacro, p) {}
  MacroDef def;
};

struct CallBlockStmt : Stmt {
  explicit CallBlockStmt(SourcePos p) : Stmt(StmtKind::kCallBlock, p) {}
  std::unique_ptr<CallExpr> call;
  MacroDef caller;  // name "caller"
};

struct FilterBlockStmt : Stmt {
  explicit FilterBlockStmt(SourcePos p) : Stmt(StmtKind::kFilterBlock, p) {}
  std::vector<std::unique_ptr<FilterExpr>> filters;
  Body body;
};

struct WithStmt : Stmt {
  explicit WithStmt(SourcePos p) : Stmt(StmtKind::kWith, p) {}
  std::vector<Target> targets;
  std::vector<ExprPtr> values;
  Body body;
};

struct ScopeStmt : Stmt {
  explicit ScopeStmt(SourcePos p) : Stmt(StmtKind::kScope, p) {}
  Body body;
};

/// A tag Jinja accepts but that cannot work here (extends/include/import need a template loader, which
/// Hugging Face's environment does not have either): fails when executed, with Jinja's message.
struct UnsupportedStmt : Stmt {
  UnsupportedStmt(SourcePos p, std::string k, std::string m)
      : Stmt(StmtKind::kUnsupported, p), error_kind(std::move(k)), message(std::move(m)) {}
  std::string error_kind;
  std::string message;
};

/// A parsed template.
struct TemplateAst {
  Body body;
};

}  // namespace tandem::tmpl
