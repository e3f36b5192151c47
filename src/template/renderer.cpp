#include "template/renderer.h"

#include "template/access.h"
#include "template/filters.h"
#include "template/globals.h"
#include "template/jinja_tests.h"
#include "template/loop_state.h"
#include "template/py_ops.h"
#include "template/render_error.h"

namespace tandem::tmpl {
namespace {

template <typename Fn>
auto with_pos(SourcePos pos, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (RenderError& e) {
    if (!e.has_pos()) e.set_pos(pos);
    throw;
  }
}

}  // namespace

Renderer::DepthGuard::DepthGuard(Renderer& r, SourcePos pos) : r_(r) {
  with_pos(pos, [&] {
    r_.step();
    if (r_.render_depth_ >= r_.limits_.max_render_depth)
      throw_limit("the render's evaluation depth", "max_render_depth", r_.limits_.max_render_depth);
  });
  ++r_.render_depth_;
}

void Renderer::check_bounds(const Value& v) const {
  if (held_bytes(v) > limits_.max_output_bytes)
    throw_limit(
        v.is_string() ? "a string of the render" : "a list, dict or namespace of the render (its contents)",
        "max_output_bytes", limits_.max_output_bytes);
  if (nesting(v) > limits_.max_nesting)
    throw_limit("the nesting of a list, dict or namespace of the render", "max_nesting", limits_.max_nesting);
}

// Steps stand for time, so the work behind values is charged, not only the expression that made them. A
// string is copied whenever it is evaluated (Values hold strings by value), so it costs its bytes; a
// container built by an expression (a literal, an operator, a filter, a call, a slice) costs its bytes; a
// container merely read (a name, an attribute: shared, not copied) costs nothing until something walks it:
// comparisons, `in`, filters and methods charge their operands (charge_operand). With the defaults this
// bounds a render's copying to a few GB and its per-item work to ~10^8 items, where a string grown by one
// character per iteration, or `x in big` in a loop, was quadratic without bound. Real templates stay far
// below: the bundled ones take ~50-200 steps per message (tests/unit/template_limits_test.cpp renders 2000
// messages).
namespace {
constexpr int64_t kBytesPerStep = 256;
constexpr int64_t kItemsPerStep = 16;
}  // namespace

void Renderer::charge_value(const Expr& expr, const Value& v) {
  int64_t work = 0;
  if (v.is_string()) {
    work = static_cast<int64_t>(v.as_str().size()) / kBytesPerStep;
  } else if ((v.is_sequence() || v.is_dict()) && expr.kind != ExprKind::kName &&
             expr.kind != ExprKind::kGetattr) {
    work = static_cast<int64_t>(held_bytes(v) / kBytesPerStep);
  }
  if (work > 0) charge(work);
}

void Renderer::charge_operand(const Value& v) {
  int64_t work = 0;
  if (v.is_string()) {
    work = static_cast<int64_t>(v.as_str().size()) / kBytesPerStep;
  } else if (v.is_sequence()) {
    work = static_cast<int64_t>(v.seq().items.size()) / kItemsPerStep;
  } else if (v.is_dict()) {
    work = static_cast<int64_t>(v.dict().size()) / kItemsPerStep;
  }
  if (work > 0) charge(work);
}

void Renderer::append(std::string& out, std::string_view text) const {
  if (text.size() > limits_.max_output_bytes - std::min(limits_.max_output_bytes, out.size()))
    throw_limit("the rendered text", "max_output_bytes", limits_.max_output_bytes);
  out += text;
}

Renderer::~Renderer() {
  for (const std::weak_ptr<Namespace>& weak : namespaces_) {
    if (std::shared_ptr<Namespace> ns = weak.lock()) ns->attrs = Dict();
  }
}

Scope* Renderer::retain(const ScopePtr& scope) {
  if (retained_scopes_.empty() || retained_scopes_.back() != scope) retained_scopes_.push_back(scope);
  return scope.get();
}

std::string Renderer::render(const Value& globals) {
  ScopePtr builtins = make_builtin_scope();
  ScopePtr top = Scope::child_of(builtins);
  if (globals.is_dict()) {
    for (const auto& [k, v] : globals.dict().entries()) {
      if (!k.is_string())
        throw_error("TypeError", "template variable names must be strings, not {}", k.type_name());
      top->set(k.as_str(), v);
    }
  }
  std::string out;
  exec_body(ast_.body, top, out);
  return out;
}

Renderer::Flow Renderer::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const StmtPtr& stmt : body) {
    const Flow flow = exec(*stmt, scope, out);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Renderer::Flow Renderer::exec(const Stmt& stmt, const ScopePtr& scope, std::string& out) {
  const DepthGuard depth(*this, stmt.pos);
  switch (stmt.kind) {
    case StmtKind::kOutput:
      for (const OutputStmt::Part& part : static_cast<const OutputStmt&>(stmt).parts) {
        if (part.expr) {
          const Value v = eval(*part.expr, scope);
          with_pos(part.expr->pos, [&] { append(out, v.is_string() ? v.as_str() : to_str(v)); });
        } else {
          with_pos(stmt.pos, [&] { append(out, part.text); });
        }
      }
      return Flow::kNormal;
    case StmtKind::kFor: {
      const auto& s = static_cast<const ForStmt&>(stmt);
      const Value iterable = eval(*s.iter, scope);
      return exec_for(s, scope, iterable, 0, out);
    }
    case StmtKind::kIf: {
      const auto& s = static_cast<const IfStmt&>(stmt);
      for (const auto& [test, body] : s.branches) {
        if (truthy(eval(*test, scope))) return exec_body(body, scope, out);
      }
      return exec_body(s.else_body, scope, out);
    }
    case StmtKind::kSet: {
      const auto& s = static_cast<const SetStmt&>(stmt);
      const Value v = eval(*s.value, scope);
      with_pos(s.target.pos, [&] { assign(s.target, v, scope); });
      return Flow::kNormal;
    }
    case StmtKind::kSetBlock: {
      const auto& s = static_cast<const SetBlockStmt&>(stmt);
      std::string text;
      // break/continue inside the block leave it (and the assignment) for the enclosing loop.
      if (const Flow flow = exec_body(s.body, Scope::child_of(scope), text); flow != Flow::kNormal)
        return flow;
      const Value v = apply_filter_chain(s.filters, Value(std::move(text)), scope);
      with_pos(s.target.pos, [&] { assign(s.target, v, scope); });
      return Flow::kNormal;
    }
    case StmtKind::kMacro: {
      const auto& s = static_cast<const MacroStmt&>(stmt);
      scope->set(s.def.name, make_macro(s.def, scope));
      return Flow::kNormal;
    }
    case StmtKind::kCallBlock: {
      const auto& s = static_cast<const CallBlockStmt&>(stmt);
      const Value callee = eval(*s.call->callee, scope);
      CallArgs args = eval_args(s.call->args, scope);
      args.kwargs.emplace_back("caller", make_macro(s.caller, scope));
      const Value result = with_pos(s.call->pos, [&] {
        Value v = call(callee, args);
        check_bounds(v);
        return v;
      });
      with_pos(s.pos, [&] { append(out, to_str(result)); });
      return Flow::kNormal;
    }
    case StmtKind::kFilterBlock: {
      const auto& s = static_cast<const FilterBlockStmt&>(stmt);
      std::string text;
      if (const Flow flow = exec_body(s.body, Scope::child_of(scope), text); flow != Flow::kNormal)
        return flow;
      const Value v = apply_filter_chain(s.filters, Value(std::move(text)), scope);
      with_pos(s.pos, [&] { append(out, to_str(v)); });
      return Flow::kNormal;
    }
    case StmtKind::kWith: {
      const auto& s = static_cast<const WithStmt&>(stmt);
      std::vector<Value> values;
      for (const ExprPtr& e : s.values) values.push_back(eval(*e, scope));
      ScopePtr inner = Scope::child_of(scope);
      for (size_t i = 0; i < s.targets.size(); ++i) {
        with_pos(s.targets[i].pos, [&] { assign(s.targets[i], values[i], inner); });
      }
      return exec_body(s.body, inner, out);
    }
    case StmtKind::kScope:
      exec_body(static_cast<const ScopeStmt&>(stmt).body, Scope::child_of(scope), out);
      return Flow::kNormal;
    case StmtKind::kBreak:
      return Flow::kBreak;
    case StmtKind::kContinue:
      return Flow::kContinue;
    case StmtKind::kUnsupported: {
      const auto& s = static_cast<const UnsupportedStmt&>(stmt);
      RenderError e(s.error_kind, s.message);
      e.set_pos(s.pos);
      throw e;
    }
  }
  return Flow::kNormal;
}

Renderer::Flow Renderer::exec_for(const ForStmt& s, const ScopePtr& scope, const Value& iterable, int depth0,
                                  std::string& out) {
  std::vector<Value> items = with_pos(s.iter->pos, [&] { return iterate(iterable); });
  if (s.filter) {
    // {% for x in xs if cond %}: filtered before the loop, so loop.index/length count kept items only.
    std::vector<Value> kept;
    for (Value& item : items) {
      ScopePtr probe = Scope::child_of(scope);
      with_pos(s.target.pos, [&] { assign(s.target, item, probe); });
      if (truthy(eval(*s.filter, probe))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    // The else block runs outside this loop: break/continue there belong to an enclosing loop.
    return exec_body(s.else_body, Scope::child_of(scope), out);
  }
  auto loop = std::make_shared<LoopState>();
  loop->items = std::move(items);
  loop->depth0 = depth0;
  if (s.recursive) {
    Scope* outer = retain(scope);
    loop->recurse = [this, &s, outer](Renderer&, const Value& inner, int inner_depth0) -> Value {
      std::string text;
      exec_for(s, outer->shared_from_this(), inner, inner_depth0, text);
      return Value(std::move(text));
    };
  }
  const Value loop_value(loop);
  for (size_t i = 0; i < loop->items.size(); ++i) {
    with_pos(s.pos, [&] { step(); });  // an empty body still costs a step per iteration
    loop->index0 = i;
    ScopePtr iteration = Scope::child_of(scope);
    with_pos(s.target.pos, [&] { assign(s.target, loop->items[i], iteration); });
    iteration->set("loop", loop_value);
    if (exec_body(s.body, iteration, out) == Flow::kBreak) break;
  }
  return Flow::kNormal;
}

void Renderer::assign(const Target& target, const Value& value, const ScopePtr& scope) {
  switch (target.kind) {
    case Target::Kind::kName:
      scope->set(target.name, value);
      return;
    case Target::Kind::kTuple: {
      const std::vector<Value> items = iterate(value);
      const size_t want = target.items.size();
      if (items.size() < want) {
        throw_error("ValueError", "not enough values to unpack (expected {}, got {})", want, items.size());
      }
      if (items.size() > want) throw_error("ValueError", "too many values to unpack (expected {})", want);
      for (size_t i = 0; i < want; ++i) assign(target.items[i], items[i], scope);
      return;
    }
    case Target::Kind::kNamespaceAttr: {
      const Value* ns = scope->lookup(target.name);
      if (ns == nullptr || !ns->is_namespace()) {
        throw_error("TemplateRuntimeError", "cannot assign attribute on non-namespace object");
      }
      ns->ns().attrs.set(Value(target.attr), value);
      return;
    }
  }
}

Value Renderer::make_macro(const MacroDef& def, const ScopePtr& scope) {
  auto c = std::make_shared<Callable>();
  c->name = def.name;
  c->kind = Callable::Kind::kMacro;
  Scope* closure = retain(scope);
  c->fn = [&def, closure](Renderer& r, CallArgs& args) {
    return r.invoke_macro(def, closure->shared_from_this(), args);
  };
  return Value(std::shared_ptr<const Callable>(std::move(c)));
}

// jinja2.runtime.Macro.__call__ / _invoke.
Value Renderer::invoke_macro(const MacroDef& def, const ScopePtr& closure, CallArgs& args) {
  if (call_depth_ >= limits_.max_call_depth)
    throw_error("RecursionError", "maximum recursion depth exceeded (TemplateLimits::max_call_depth = {})",
                limits_.max_call_depth);
  const size_t n_params = def.params.size();
  ScopePtr frame = Scope::child_of(closure);
  std::vector<std::pair<std::string, Value>> kwargs = std::move(args.kwargs);
  auto take_kwarg = [&](const std::string& name) -> std::optional<Value> {
    for (auto it = kwargs.begin(); it != kwargs.end(); ++it) {
      if (it->first == name) {
        Value v = std::move(it->second);
        kwargs.erase(it);
        return v;
      }
    }
    return std::nullopt;
  };
  std::vector<std::optional<Value>> bound(n_params);
  for (size_t i = 0; i < n_params; ++i) {
    if (i < args.args.size()) {
      bound[i] = args.args[i];
    } else {
      bound[i] = take_kwarg(def.params[i]);
    }
  }
  if (def.uses_caller) {
    std::optional<Value> caller = take_kwarg("caller");
    frame->set("caller", caller ? *caller : Value::undefined("No caller defined"));
  }
  if (def.uses_kwargs) {
    auto d = std::make_shared<Dict>();
    for (auto& [k, v] : kwargs) d->set(Value(k), std::move(v));
    frame->set("kwargs", Value(std::shared_ptr<const Dict>(std::move(d))));
  } else if (!kwargs.empty()) {
    if (kwargs.front().first == "caller") {
      throw_error(
          "TypeError",
          "macro '{}' was invoked with two values for the special caller argument. This is most likely a "
          "bug.",
          def.name);
    }
    throw_error("TypeError", "macro '{}' takes no keyword argument '{}'", def.name, kwargs.front().first);
  }
  if (def.uses_varargs) {
    std::vector<Value> rest;
    for (size_t i = n_params; i < args.args.size(); ++i) rest.push_back(args.args[i]);
    frame->set("varargs", Value::tuple(std::move(rest)));
  } else if (args.args.size() > n_params) {
    throw_error("TypeError", "macro '{}' takes not more than {} argument(s)", def.name, n_params);
  }
  // Parameters bind in order; a missing one takes its default, evaluated in the macro frame so it can
  // refer to earlier parameters.
  const size_t first_default = n_params - def.defaults.size();
  for (size_t i = 0; i < n_params; ++i) {
    if (bound[i]) {
      frame->set(def.params[i], *bound[i]);
    } else if (i >= first_default) {
      frame->set(def.params[i], eval(*def.defaults[i - first_default], frame));
    } else {
      frame->set(def.params[i],
                 Value::undefined(fmt::format("parameter '{}' was not provided", def.params[i])));
    }
  }
  std::string out;
  ++call_depth_;
  try {
    exec_body(def.body, frame, out);
  } catch (...) {
    --call_depth_;
    throw;
  }
  --call_depth_;
  return Value(std::move(out));
}

Value Renderer::call(const Value& callee, CallArgs& args) {
  switch (callee.kind()) {
    case Value::Kind::kCallable:
      return callee.callable().fn(*this, args);
    case Value::Kind::kUndefined:
      fail_undefined(callee.as_undefined());
    case Value::Kind::kLoop: {
      LoopState& loop = callee.loop();
      if (!loop.recurse) {
        throw_error("TypeError", "The loop must have the 'recursive' marker to be called recursively.");
      }
      if (args.args.size() != 1 || !args.kwargs.empty()) {
        throw_error("TypeError", "loop() takes exactly one argument ({} given)",
                    args.args.size() + args.kwargs.size());
      }
      if (call_depth_ >= limits_.max_call_depth)
        throw_error("RecursionError",
                    "maximum recursion depth exceeded (TemplateLimits::max_call_depth = {})",
                    limits_.max_call_depth);
      ++call_depth_;
      try {
        Value v = loop.recurse(*this, args.args[0], loop.depth0 + 1);
        --call_depth_;
        return v;
      } catch (...) {
        --call_depth_;
        throw;
      }
    }
    default:
      throw_error("TypeError", "'{}' object is not callable", callee.type_name());
  }
}

Value Renderer::apply_filter(const std::string& name, const Value& operand, const CallArgs& args) {
  const FilterFn fn = find_filter(name);
  if (fn == nullptr) throw_error("TemplateRuntimeError", "No filter named '{}'.", name);
  if (name != "length" && name != "count") charge_operand(operand);  // the two O(1) filters templates loop on
  return fn(*this, operand, args);
}

bool Renderer::apply_test(const std::string& name, const Value& operand, const CallArgs& args) {
  const TestFn fn = find_test(name);
  if (fn == nullptr) throw_error("TemplateRuntimeError", "No test named '{}'.", name);
  return fn(*this, operand, args);
}

Value Renderer::apply_filter_chain(const std::vector<std::unique_ptr<FilterExpr>>& filters, Value input,
                                   const ScopePtr& scope) {
  for (const auto& f : filters) input = eval_filter(*f, input, scope);
  return input;
}

Value Renderer::eval_filter(const FilterExpr& f, const Value& operand, const ScopePtr& scope) {
  CallArgs args = eval_args(f.args, scope);
  return with_pos(f.pos, [&] {
    if (!f.known) throw_error("TemplateRuntimeError", "No filter named '{}' found.", f.name);
    return apply_filter(f.name, operand, args);
  });
}

CallArgs Renderer::eval_args(const ArgExprs& a, const ScopePtr& scope) {
  CallArgs out;
  out.args.reserve(a.args.size());
  for (const ExprPtr& e : a.args) out.args.push_back(eval(*e, scope));
  for (const auto& [k, e] : a.kwargs) out.kwargs.emplace_back(k, eval(*e, scope));
  if (a.dyn_args) {
    const Value v = eval(*a.dyn_args, scope);
    for (Value& item : with_pos(a.dyn_args->pos, [&] { return iterate(v); }))
      out.args.push_back(std::move(item));
  }
  if (a.dyn_kwargs) {
    const Value v = eval(*a.dyn_kwargs, scope);
    with_pos(a.dyn_kwargs->pos, [&] {
      if (!v.is_dict())
        throw_error("TypeError", "argument after ** must be a mapping, not {}", v.type_name());
      for (const auto& [k, item] : v.dict().entries()) {
        if (!k.is_string()) throw_error("TypeError", "keywords must be strings");
        out.kwargs.emplace_back(k.as_str(), item);
      }
    });
  }
  return out;
}

Value Renderer::eval(const Expr& expr, const ScopePtr& scope) {
  const DepthGuard depth(*this, expr.pos);
  return with_pos(expr.pos, [&] {
    Value v = eval_inner(expr, scope);
    check_bounds(v);
    charge_value(expr, v);
    return v;
  });
}

Value Renderer::eval_inner(const Expr& expr, const ScopePtr& scope) {
  switch (expr.kind) {
    case ExprKind::kLiteral:
      return static_cast<const LiteralExpr&>(expr).value;
    case ExprKind::kName: {
      const auto& e = static_cast<const NameExpr&>(expr);
      if (const Value* v = scope->lookup(e.name)) return *v;
      return Value::undefined(fmt::format("'{}' is undefined", e.name));
    }
    case ExprKind::kList: {
      const auto& e = static_cast<const ListExpr&>(expr);
      std::vector<Value> items;
      items.reserve(e.items.size());
      for (const ExprPtr& item : e.items) items.push_back(eval(*item, scope));
      return e.is_tuple ? Value::tuple(std::move(items)) : Value::list(std::move(items));
    }
    case ExprKind::kDict: {
      const auto& e = static_cast<const DictExpr&>(expr);
      auto d = std::make_shared<Dict>();
      for (const auto& [k, v] : e.items) {
        Value key = eval(*k, scope);
        Value value = eval(*v, scope);
        with_pos(k->pos, [&] { d->set(std::move(key), std::move(value)); });
      }
      return Value(std::shared_ptr<const Dict>(std::move(d)));
    }
    case ExprKind::kGetattr: {
      const auto& e = static_cast<const GetattrExpr&>(expr);
      return get_attr(eval(*e.obj, scope), e.attr);
    }
    case ExprKind::kGetitem: {
      const auto& e = static_cast<const GetitemExpr&>(expr);
      const Value obj = eval(*e.obj, scope);
      if (e.index->kind == ExprKind::kSlice) {
        const auto& s = static_cast<const SliceExpr&>(*e.index);
        auto bound = [&](const ExprPtr& b) { return b ? eval(*b, scope) : Value(None{}); };
        const Value start = bound(s.start);
        const Value stop = bound(s.stop);
        const Value step = bound(s.step);
        return get_slice(obj, start, stop, step);
      }
      return get_item(obj, eval(*e.index, scope));
    }
    case ExprKind::kSlice:
      throw_error("TemplateSyntaxError", "a slice is only valid inside []");
    case ExprKind::kCall: {
      const auto& e = static_cast<const CallExpr&>(expr);
      const Value callee = eval(*e.callee, scope);
      CallArgs args = eval_args(e.args, scope);
      return call(callee, args);
    }
    case ExprKind::kFilter: {
      const auto& e = static_cast<const FilterExpr&>(expr);
      return eval_filter(e, eval(*e.operand, scope), scope);
    }
    case ExprKind::kTest: {
      const auto& e = static_cast<const TestExpr&>(expr);
      const Value operand = eval(*e.operand, scope);
      CallArgs args = eval_args(e.args, scope);
      if (!e.known) throw_error("TemplateRuntimeError", "No test named '{}' found.", e.name);
      return apply_test(e.name, operand, args);
    }
    case ExprKind::kUnary: {
      const auto& e = static_cast<const UnaryExpr&>(expr);
      return unary_op(e.op, eval(*e.operand, scope));
    }
    case ExprKind::kBinary: {
      const auto& e = static_cast<const BinaryExpr&>(expr);
      Value left = eval(*e.left, scope);
      if (e.op == BinaryOp::kAnd) return truthy(left) ? eval(*e.right, scope) : left;
      if (e.op == BinaryOp::kOr) return truthy(left) ? left : eval(*e.right, scope);
      return binary_op(e.op, left, eval(*e.right, scope), limits_);
    }
    case ExprKind::kConcat: {
      const auto& e = static_cast<const ConcatExpr&>(expr);
      std::string out;
      for (const ExprPtr& item : e.items) append(out, to_str(eval(*item, scope)));
      return Value(std::move(out));
    }
    case ExprKind::kCompare: {
      const auto& e = static_cast<const CompareExpr&>(expr);
      Value left = eval(*e.first, scope);
      for (const auto& [op, right_expr] : e.ops) {
        Value right = eval(*right_expr, scope);
        charge_operand(left);
        charge_operand(right);
        if (!compare(op, left, right)) return false;
        left = std::move(right);
      }
      return true;
    }
    case ExprKind::kCondExpr: {
      const auto& e = static_cast<const CondExpr&>(expr);
      if (truthy(eval(*e.test, scope))) return eval(*e.then, scope);
      if (e.otherwise) return eval(*e.otherwise, scope);
      return Value::undefined(fmt::format(
          "the inline if-expression on line {} evaluated to false and no else section was defined.",
          e.pos.line));
    }
  }
  return Value();
}

}  // namespace tandem::tmpl
