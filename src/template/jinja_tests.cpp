#include "template/jinja_tests.h"

#include <unordered_map>

#include "template/ast.h"
#include "template/call_args.h"
#include "template/filters.h"
#include "template/py_ops.h"
#include "template/py_string.h"
#include "template/render_error.h"
#include "template/renderer.h"

namespace tandem::tmpl {
namespace {

const Value& single_arg(const char* name, const CallArgs& a) {
  if (a.args.size() != 1 || !a.kwargs.empty()) {
    throw_error("TypeError", "test '{}' takes exactly 1 argument ({} given)", name,
                a.args.size() + a.kwargs.size());
  }
  return a.args[0];
}

void no_args(const char* name, const CallArgs& a) {
  if (!a.args.empty() || !a.kwargs.empty()) {
    throw_error("TypeError", "test '{}' takes no arguments ({} given)", name,
                a.args.size() + a.kwargs.size());
  }
}

// A test without arguments: checks there are none, then returns `result`.
bool unary(const char* name, const CallArgs& a, bool result) {
  no_args(name, a);
  return result;
}

// value % 2 == r, with Python's % (a string operand formats, as in Jinja).
bool parity(const Value& v, int64_t r, const TemplateLimits& limits) {
  return equals(binary_op(BinaryOp::kMod, v, Value(int64_t{2}), limits), Value(r));
}

template <CompareOp Op>
bool compare_test(Renderer&, const Value& v, const CallArgs& a) {
  return compare(Op, v, single_arg("compare", a));
}

bool is_sequence(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:  // jinja2.Undefined has __len__ and __getitem__
    case Value::Kind::kString:
    case Value::Kind::kDict:
      return true;
    case Value::Kind::kSequence: {
      const SeqKind k = v.seq().kind;
      return k == SeqKind::kList || k == SeqKind::kTuple || k == SeqKind::kRange;
    }
    default:
      return false;
  }
}

bool is_iterable(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kString:
    case Value::Kind::kSequence:
    case Value::Kind::kDict:
    case Value::Kind::kLoop:
      return true;
    default:
      return false;
  }
}

// Python `is` on values: singletons and small cached ints compare by value, containers by identity.
bool same_object(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kNone:
    case Value::Kind::kUndefined:
      return a.is_none();
    case Value::Kind::kBool:
      return a.as_bool() == b.as_bool();
    case Value::Kind::kInt:
      return a.as_int() == b.as_int() && a.as_int() >= -5 && a.as_int() <= 256;
    case Value::Kind::kFloat:
    case Value::Kind::kString:
      return false;
    default:
      return a.identity() == b.identity();
  }
}

const std::unordered_map<std::string_view, TestFn>& registry() {
  static const std::unordered_map<std::string_view, TestFn> kTests = {
      {"defined",
       [](Renderer&, const Value& v, const CallArgs& a) { return unary("defined", a, !v.is_undefined()); }},
      {"undefined",
       [](Renderer&, const Value& v, const CallArgs& a) { return unary("undefined", a, v.is_undefined()); }},
      {"none", [](Renderer&, const Value& v, const CallArgs& a) { return unary("none", a, v.is_none()); }},
      {"boolean",
       [](Renderer&, const Value& v, const CallArgs& a) { return unary("boolean", a, v.is_bool()); }},
      {"true", [](Renderer&, const Value& v,
                  const CallArgs& a) { return unary("true", a, v.is_bool() && v.as_bool()); }},
      {"false", [](Renderer&, const Value& v,
                   const CallArgs& a) { return unary("false", a, v.is_bool() && !v.as_bool()); }},
      {"integer",
       [](Renderer&, const Value& v, const CallArgs& a) { return unary("integer", a, v.is_int()); }},
      {"float", [](Renderer&, const Value& v, const CallArgs& a) { return unary("float", a, v.is_float()); }},
      {"number",
       [](Renderer&, const Value& v, const CallArgs& a) { return unary("number", a, v.is_number()); }},
      {"string",
       [](Renderer&, const Value& v, const CallArgs& a) { return unary("string", a, v.is_string()); }},
      {"mapping",
       [](Renderer&, const Value& v, const CallArgs& a) { return unary("mapping", a, v.is_dict()); }},
      {"sequence",
       [](Renderer&, const Value& v, const CallArgs& a) { return unary("sequence", a, is_sequence(v)); }},
      {"iterable",
       [](Renderer&, const Value& v, const CallArgs& a) { return unary("iterable", a, is_iterable(v)); }},
      {"callable",
       [](Renderer&, const Value& v, const CallArgs& a) {
         no_args("callable", a);
         return v.is_callable() || v.is_undefined() || v.is_loop();
       }},
      {"escaped",
       [](Renderer&, const Value& v, const CallArgs& a) { return unary("escaped", a, v.is_markup()); }},
      {"lower", [](Renderer&, const Value& v,
                   const CallArgs& a) { return unary("lower", a, py::islower(to_str(v))); }},
      {"upper", [](Renderer&, const Value& v,
                   const CallArgs& a) { return unary("upper", a, py::isupper(to_str(v))); }},
      {"odd", [](Renderer& r, const Value& v,
                 const CallArgs& a) { return unary("odd", a, parity(v, 1, r.limits())); }},
      {"even", [](Renderer& r, const Value& v,
                  const CallArgs& a) { return unary("even", a, parity(v, 0, r.limits())); }},
      {"divisibleby",
       [](Renderer& r, const Value& v, const CallArgs& a) {
         return equals(binary_op(BinaryOp::kMod, v, single_arg("divisibleby", a), r.limits()),
                       Value(int64_t{0}));
       }},
      {"sameas",
       [](Renderer&, const Value& v, const CallArgs& a) { return same_object(v, single_arg("sameas", a)); }},
      {"in", [](Renderer&, const Value& v, const CallArgs& a) { return contains(single_arg("in", a), v); }},
      {"filter",
       [](Renderer&, const Value& v, const CallArgs& a) {
         no_args("filter", a);
         return v.is_string() && has_filter(v.as_str());
       }},
      {"test",
       [](Renderer&, const Value& v, const CallArgs& a) {
         no_args("test", a);
         return v.is_string() && has_test(v.as_str());
       }},
      {"==", &compare_test<CompareOp::kEq>},
      {"eq", &compare_test<CompareOp::kEq>},
      {"equalto", &compare_test<CompareOp::kEq>},
      {"!=", &compare_test<CompareOp::kNe>},
      {"ne", &compare_test<CompareOp::kNe>},
      {">", &compare_test<CompareOp::kGt>},
      {"gt", &compare_test<CompareOp::kGt>},
      {"greaterthan", &compare_test<CompareOp::kGt>},
      {">=", &compare_test<CompareOp::kGe>},
      {"ge", &compare_test<CompareOp::kGe>},
      {"<", &compare_test<CompareOp::kLt>},
      {"lt", &compare_test<CompareOp::kLt>},
      {"lessthan", &compare_test<CompareOp::kLt>},
      {"<=", &compare_test<CompareOp::kLe>},
      {"le", &compare_test<CompareOp::kLe>},
  };
  return kTests;
}

}  // namespace

TestFn find_test(std::string_view name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : it->second;
}

bool has_test(std::string_view name) {
  return find_test(name) != nullptr;
}

}  // namespace tandem::tmpl
