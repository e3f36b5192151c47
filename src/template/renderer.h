// Executes a parsed template: statements write to an output string, expressions evaluate to Values with
// Python/Jinja semantics. One Renderer serves one render call (it is cheap to construct); errors are
// RenderErrors carrying the position of the innermost expression or statement that failed.
#pragma once

#include <string>

#include "template/ast.h"
#include "template/limits.h"
#include "template/scope.h"
#include "template/value.h"

namespace tandem::tmpl {

class Renderer {
 public:
  /// `limits` bound this render (template/limits.h): a RenderError of kind "RenderLimitError" stops it.
  Renderer(const TemplateAst& ast, const TemplateLimits& limits) : ast_(ast), limits_(limits) {}
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

  const TemplateLimits& limits() const { return limits_; }

  /// Counts `n` steps of work (TemplateLimits::max_steps). Every statement, expression and loop iteration is
  /// a step; filters that loop over many items call it per item.
  void charge(int64_t n) {
    steps_ += n;
    if (steps_ > limits_.max_steps) throw_limit("the render's step count", "max_steps", limits_.max_steps);
  }
  void step() { charge(1); }
  /// Charges the O(n) work of reading `v` whole (a filter's operand, a method's object, a comparison's side):
  /// its items / 16 for a container, its bytes / 256 for a string.
  void charge_operand(const Value& v);

 private:
  /// One statement or expression: a step (TemplateLimits::max_steps) and one level of evaluation nesting
  /// (TemplateLimits::max_render_depth), released on scope exit. Errors carry `pos`.
  class DepthGuard {
   public:
    DepthGuard(Renderer& r, SourcePos pos);
    ~DepthGuard() { --r_.render_depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    Renderer& r_;
  };

  /// Throws unless `v` is within the per-value bounds: what it holds within max_output_bytes, its nesting
  /// within max_nesting.
  void check_bounds(const Value& v) const;
  /// Charges the work behind `v`, the value of `expr` (see renderer.cpp).
  void charge_value(const Expr& expr, const Value& v);
  /// out += text, within max_output_bytes.
  void append(std::string& out, std::string_view text) const;

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
  TemplateLimits limits_;
  int64_t steps_ = 0;
  int render_depth_ = 0;
  int call_depth_ = 0;
  std::vector<ScopePtr> retained_scopes_;
  std::vector<std::weak_ptr<Namespace>> namespaces_;
};

}  // namespace tandem::tmpl
