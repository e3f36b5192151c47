// Executes a parsed template: statements write to an output string, expressions evaluate to Values with
// Python/Jinja semantics. One Renderer serves one render call (it is cheap to construct); errors are
// RenderErrors carrying the position of the innermost expression or statement that failed.
#pragma once

#include <string>

#include "template/ast.h"
#include "template/scope.h"
#include "template/value.h"

namespace tandem::tmpl {

class Renderer {
 public:
  explicit Renderer(const TemplateAst& ast) : ast_(ast) {}
  ~Renderer();
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  /// Renders the template with `globals` (a dict: messages, tools, add_generation_prompt, ...) as its
  /// variables, over the built-in globals (range, namespace, raise_exception, strftime_now, ...).
  std::string render(const Value& globals);

  /// Calls a macro, global function, bound method or recursive loop.
  Value call(const Value& callee, CallArgs& args);

  /// Applies a filter / test by name (used by map(), select() and friends).
  Value apply_filter(const std::string& name, const Value& operand, const CallArgs& args);
  bool apply_test(const std::string& name, const Value& operand, const CallArgs& args);

  /// Records a namespace created during this render; its attributes are cleared when the render ends so
  /// self-references (`{% set ns.me = ns %}`) cannot leak.
  void track_namespace(const std::shared_ptr<Namespace>& ns) { namespaces_.push_back(ns); }

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  Flow exec(const Stmt& stmt, const ScopePtr& scope, std::string& out);
  Flow exec_for(const ForStmt& stmt, const ScopePtr& scope, const Value& iterable, int depth0,
                std::string& out);
  void assign(const Target& target, const Value& value, const ScopePtr& scope);
  Value make_macro(const MacroDef& def, const ScopePtr& scope);
  Value invoke_macro(const MacroDef& def, const ScopePtr& closure, CallArgs& args);
  Value apply_filter_chain(const std::vector<std::unique_ptr<FilterExpr>>& filters, Value input,
                           const ScopePtr& scope);

  Value eval(const Expr& expr, const ScopePtr& scope);
  Value eval_inner(const Expr& expr, const ScopePtr& scope);
  CallArgs eval_args(const ArgExprs& args, const ScopePtr& scope);
  Value eval_filter(const FilterExpr& f, const Value& operand, const ScopePtr& scope);

  /// Keeps `scope` alive until the render ends and returns it as a plain pointer for closures (macros,
  /// recursive loops), which would otherwise form reference cycles with the scope that holds them.
  Scope* retain(const ScopePtr& scope);

  const TemplateAst& ast_;
  int call_depth_ = 0;
  std::vector<ScopePtr> retained_scopes_;
  std::vector<std::weak_ptr<Namespace>> namespaces_;
};

}  // namespace tandem::tmpl
