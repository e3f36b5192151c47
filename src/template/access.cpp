#include "template/access.h"

#include <optional>

#include "template/loop_state.h"
#include "template/methods.h"
#include "template/py_string.h"
#include "template/render_error.h"
#include "template/unicode.h"

namespace tandem::tmpl {
namespace {

Value missing_attr(const Value& obj, const std::string& name) {
  return Value::undefined(
      fmt::format("{} has no attribute {}", py_str_repr(object_type_repr(obj)), py_str_repr(name)));
}

Value missing_item(const Value& obj, const Value& key) {
  if (key.is_string()) return missing_attr(obj, key.as_str());
  return Value::undefined(fmt::format("{} has no element {}", object_type_repr(obj), to_repr(key)));
}

std::optional<int64_t> slice_bound(const Value& v) {
  if (v.is_none()) return std::nullopt;
  if (v.is_integral()) return v.as_integral();
  if (v.is_undefined()) fail_undefined(v.as_undefined());
  throw_error("TypeError", "slice indices must be integers or None or have an __index__ method");
}

}  // namespace

std::string object_type_repr(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kNamespace:
      return "jinja2.utils.Namespace object";
    case Value::Kind::kLoop:
      return "jinja2.runtime.LoopContext object";
    case Value::Kind::kCallable:
      return v.callable().kind == Callable::Kind::kMacro ? "jinja2.runtime.Macro object"
                                                         : v.type_name() + " object";
    case Value::Kind::kString:
      return v.is_markup() ? "markupsafe.Markup object" : "str object";
    default:
      return v.type_name() + " object";
  }
}

// The Python attribute (not item) of `obj`, if it has one.
std::optional<Value> python_attribute(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kNamespace:
      if (const Value* v = obj.ns().attrs.find(Value(name))) return *v;
      return std::nullopt;
    case Value::Kind::kLoop:
      return loop_attr(obj, name);
    case Value::Kind::kString:
    case Value::Kind::kSequence:
    case Value::Kind::kDict:
      return bound_method(obj, name);
    default:
      return std::nullopt;
  }
}

std::optional<Value> loop_attr(const Value& loop_value, const std::string& name) {
  LoopState& loop = loop_value.loop();
  const auto length = static_cast<int64_t>(loop.items.size());
  const auto index0 = static_cast<int64_t>(loop.index0);
  if (name == "index0") return index0;
  if (name == "index") return index0 + 1;
  if (name == "revindex0") return length - index0 - 1;
  if (name == "revindex") return length - index0;
  if (name == "first") return index0 == 0;
  if (name == "last") return index0 + 1 == length;
  if (name == "length") return length;
  if (name == "depth0") return static_cast<int64_t>(loop.depth0);
  if (name == "depth") return static_cast<int64_t>(loop.depth0) + 1;
  if (name == "previtem") {
    if (index0 == 0) return Value::undefined("there is no previous item");
    return loop.items[loop.index0 - 1];
  }
  if (name == "nextitem") {
    if (index0 + 1 >= length) return Value::undefined("there is no next item");
    return loop.items[loop.index0 + 1];
  }
  if (name == "cycle") {
    auto c = std::make_shared<Callable>();
    c->name = "cycle";
    c->kind = Callable::Kind::kMethod;
    c->fn = [loop_value](Renderer&, CallArgs& args) -> Value {
      if (!args.kwargs.empty()) throw_error("TypeError", "cycle() got an unexpected keyword argument");
      if (args.args.empty()) throw_error("TypeError", "no items for cycling given");
      return args.args[loop_value.loop().index0 % args.args.size()];
    };
    return Value(std::shared_ptr<const Callable>(std::move(c)));
  }
  if (name == "changed") {
    auto c = std::make_shared<Callable>();
    c->name = "changed";
    c->kind = Callable::Kind::kMethod;
    c->fn = [loop_value](Renderer&, CallArgs& args) -> Value {
      LoopState& l = loop_value.loop();
      bool same = l.last_changed.has_value() && l.last_changed->size() == args.args.size();
      for (size_t i = 0; same && i < args.args.size(); ++i) same = equals((*l.last_changed)[i], args.args[i]);
      if (same) return false;
      l.last_changed = args.args;
      return true;
    };
    return Value(std::shared_ptr<const Callable>(std::move(c)));
  }
  return std::nullopt;
}

Value get_attr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) fail_undefined(obj.as_undefined());
  if (std::optional<Value> v = python_attribute(obj, name)) return *v;
  // Then obj[name].
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().find(Value(name))) return *v;
  }
  return missing_attr(obj, name);
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) fail_undefined(obj.as_undefined());
  switch (obj.kind()) {
    case Value::Kind::kDict: {
      // Unhashable keys raise TypeError inside the lookup, which Jinja treats like a miss.
      const bool hashable = !(key.is_dict() || (key.is_sequence() && key.seq().kind != SeqKind::kTuple &&
                                                key.seq().kind != SeqKind::kRange));
      if (hashable) {
        if (const Value* v = obj.dict().find(key)) return *v;
      }
      break;
    }
    case Value::Kind::kSequence: {
      const Sequence& s = obj.seq();
      const bool subscriptable =
          s.kind == SeqKind::kList || s.kind == SeqKind::kTuple || s.kind == SeqKind::kRange;
      if (subscriptable && key.is_integral()) {
        int64_t i = key.as_integral();
        const auto n = static_cast<int64_t>(s.items.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return s.items[static_cast<size_t>(i)];
      }
      break;
    }
    case Value::Kind::kString:
      if (key.is_integral()) {
        if (std::optional<std::string> c = py::char_at(obj.as_str(), key.as_integral())) {
          return obj.is_markup() ? Value::markup(std::move(*c)) : Value(std::move(*c));
        }
      }
      break;
    default:
      break;
  }
  if (key.is_string()) {
    if (std::optional<Value> v = python_attribute(obj, key.as_str())) return *v;
  }
  return missing_item(obj, key);
}

Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.is_undefined()) fail_undefined(obj.as_undefined());
  const std::optional<int64_t> a = slice_bound(start);
  const std::optional<int64_t> b = slice_bound(stop);
  const std::optional<int64_t> c = slice_bound(step);
  if (obj.is_string()) {
    const py::SliceBounds bounds =
        py::slice_bounds(static_cast<int64_t>(unicode::length(obj.as_str())), a, b, c);
    std::string sliced = py::slice(obj.as_str(), bounds);
    return obj.is_markup() ? Value::markup(std::move(sliced)) : Value(std::move(sliced));
  }
  if (obj.is_sequence()) {
    const Sequence& s = obj.seq();
    if (s.kind == SeqKind::kList || s.kind == SeqKind::kTuple || s.kind == SeqKind::kRange) {
      const py::SliceBounds bounds = py::slice_bounds(static_cast<int64_t>(s.items.size()), a, b, c);
      std::vector<Value> items;
      items.reserve(static_cast<size_t>(bounds.count));
      int64_t i = bounds.start;
      for (int64_t n = 0; n < bounds.count; ++n, i += bounds.step)
        items.push_back(s.items[static_cast<size_t>(i)]);
      if (s.kind != SeqKind::kRange) return Value::sequence(std::move(items), s.kind);
      // A sliced range is a range: range(10)[2:4] prints as range(2, 4).
      auto r = std::make_shared<Sequence>();
      r->kind = SeqKind::kRange;
      r->items = std::move(items);
      r->range_start = s.range_start + bounds.start * s.range_step;
      r->range_stop = s.range_start + bounds.stop * s.range_step;
      r->range_step = s.range_step * bounds.step;
      r->bytes = r->items.size() * 16;  // held_bytes, as range() sets it
      return Value(std::shared_ptr<const Sequence>(std::move(r)));
    }
  }
  // A slice object is neither a valid key nor a string: Jinja returns an Undefined.
  return Value::undefined(fmt::format("{} has no element slice({}, {}, {})", object_type_repr(obj),
                                      to_repr(start), to_repr(stop), to_repr(step)));
}

}  // namespace tandem::tmpl
