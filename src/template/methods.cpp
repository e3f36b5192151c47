#include "template/methods.h"

#include <algorithm>
#include <functional>
#include <string_view>
#include <unordered_map>

#include "template/access.h"
#include "template/call_args.h"
#include "template/limits.h"
#include "template/py_format.h"
#include "template/py_ops.h"
#include "template/py_string.h"
#include "template/render_error.h"
#include "template/renderer.h"
#include "template/unicode.h"

namespace tandem::tmpl {
namespace {

// `limits` are the render's: methods that build strings from a size argument check it before allocating.
using MethodFn = Value (*)(const Value& self, const CallArgs& args, const TemplateLimits& limits);

// markupsafe.Markup wraps these str methods: string arguments are escaped and the result is Markup.
bool markup_preserving(std::string_view name) {
  static const std::unordered_map<std::string_view, int> kNames = {
      {"capitalize", 0}, {"title", 0},    {"lower", 0},  {"upper", 0},  {"replace", 0},
      {"ljust", 0},      {"rjust", 0},    {"lstrip", 0}, {"rstrip", 0}, {"center", 0},
      {"strip", 0},      {"swapcase", 0}, {"zfill", 0}};
  return kNames.count(name) > 0;
}

Value make_method(const Value& self, const std::string& name, MethodFn fn) {
  auto c = std::make_shared<Callable>();
  c->name = name + " of " + object_type_repr(self);
  c->kind = Callable::Kind::kMethod;
  if (self.is_markup() && markup_preserving(name)) {
    c->fn = [self, fn](Renderer& r, CallArgs& args) {
      r.charge_operand(self);
      CallArgs escaped = args;
      for (Value& a : escaped.args) {
        if (a.is_string() && !a.is_markup()) a = Value::markup(html_escape(a.as_str()));
      }
      for (auto& [k, a] : escaped.kwargs) {
        if (a.is_string() && !a.is_markup()) a = Value::markup(html_escape(a.as_str()));
      }
      const Value result = fn(self, escaped, r.limits());
      return result.is_string() ? Value::markup(result.as_str()) : result;
    };
  } else {
    c->fn = [self, fn](Renderer& r, CallArgs& args) {
      r.charge_operand(self);  // str.count / list.index / ... walk their object
      return fn(self, args, r.limits());
    };
  }
  return Value(std::shared_ptr<const Callable>(std::move(c)));
}

// A mutating method under ImmutableSandboxedEnvironment: reading it gives an Undefined that raises
// SecurityError when called.
Value unsafe_method(const Value& self, const std::string& name) {
  Undefined u;
  u.hint = fmt::format("access to attribute '{}' of '{}' object is unsafe.", name, self.type_name());
  u.unsafe = true;
  return u;
}

std::optional<int64_t> opt_index(const Value& v) {
  if (v.is_none()) return std::nullopt;
  if (v.is_integral()) return v.as_integral();
  if (v.is_undefined()) fail_undefined(v.as_undefined());
  throw_error("TypeError", "slice indices must be integers or None or have an __index__ method");
}

int64_t int_arg(const Value& v, const char* what) {
  if (v.is_integral()) return v.as_integral();
  if (v.is_undefined()) fail_undefined(v.as_undefined());
  throw_error("TypeError", "'{}' object cannot be interpreted as an integer ({})", v.type_name(), what);
}

const std::string& str_arg(const Value& v, const char* method, int position) {
  if (v.is_string()) return v.as_str();
  if (v.is_undefined()) fail_undefined(v.as_undefined());
  throw_error("TypeError", "{}() argument {} must be str, not {}", method, position, v.type_name());
}

std::optional<std::string> opt_str_arg(const Value& v, const char* method) {
  if (v.is_none()) return std::nullopt;
  if (v.is_string()) return v.as_str();
  if (v.is_undefined()) fail_undefined(v.as_undefined());
  throw_error("TypeError", "{} arg must be None or str", method);
}

Value str_list(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (std::string& p : parts) items.emplace_back(std::move(p));
  return Value::list(std::move(items));
}

// startswith/endswith accept a str or a tuple of str.
Value affix_test(const Value& self, const CallArgs& a, const char* method, bool prefix) {
  const auto v = bind_args(method, a, {required("affix"), Param{"start"}, Param{"end"}});
  const std::optional<int64_t> start = opt_index(v[1]);
  const std::optional<int64_t> end = opt_index(v[2]);
  auto test = [&](const std::string& affix) {
    return prefix ? py::startswith(self.as_str(), affix, start, end)
                  : py::endswith(self.as_str(), affix, start, end);
  };
  if (v[0].is_string()) return test(v[0].as_str());
  if (v[0].is_sequence() && v[0].seq().kind == SeqKind::kTuple) {
    for (const Value& item : v[0].seq().items) {
      if (!item.is_string()) {
        throw_error("TypeError", "tuple for {} must only contain str, not {}", method, item.type_name());
      }
      if (test(item.as_str())) return true;
    }
    return false;
  }
  if (v[0].is_undefined()) fail_undefined(v[0].as_undefined());
  throw_error("TypeError", "{} first arg must be str or a tuple of str, not {}", method, v[0].type_name());
}

Value strip_method(const Value& self, const CallArgs& a, const char* method, bool left, bool right) {
  const auto v = bind_args(method, a, {Param{"chars"}});
  return py::strip(self.as_str(), opt_str_arg(v[0], method), left, right);
}

Value find_method(const Value& self, const CallArgs& a, const char* method, bool reverse, bool raise) {
  const auto v = bind_args(method, a, {required("sub"), Param{"start"}, Param{"end"}});
  const std::string& sub = str_arg(v[0], method, 1);
  const int64_t r = reverse ? py::rfind(self.as_str(), sub, opt_index(v[1]), opt_index(v[2]))
                            : py::find(self.as_str(), sub, opt_index(v[1]), opt_index(v[2]));
  if (r < 0 && raise) throw_error("ValueError", "substring not found");
  return r;
}

Value pad_method(const Value& self, const CallArgs& a, const char* method, char align,
                 const TemplateLimits& limits) {
  const auto v = bind_args(method, a, {required("width"), Param{"fillchar", Value(" ")}});
  const std::string& fill = str_arg(v[1], method, 2);
  if (unicode::length(fill) != 1)
    throw_error("TypeError", "The fill character must be exactly one character long");
  return py::pad(self.as_str(), int_arg(v[0], "width"), fill, align, limits);
}

Value split_method(const Value& self, const CallArgs& a, const char* method, bool reverse) {
  const auto v = bind_args(method, a, {Param{"sep"}, Param{"maxsplit", Value(-1)}});
  std::optional<std::string> sep;
  if (!v[0].is_none()) {
    if (!v[0].is_string()) throw_error("TypeError", "must be str or None, not {}", v[0].type_name());
    sep = v[0].as_str();
  }
  const int64_t maxsplit = int_arg(v[1], "maxsplit");
  return str_list(reverse ? py::rsplit(self.as_str(), sep, maxsplit)
                          : py::split(self.as_str(), sep, maxsplit));
}

Value partition_method(const Value& self, const CallArgs& a, const char* method, bool reverse) {
  const auto v = bind_args(method, a, {required("sep")});
  const std::string& sep = str_arg(v[0], method, 1);
  if (sep.empty()) throw_error("ValueError", "empty separator");
  const std::string& s = self.as_str();
  const size_t pos = reverse ? s.rfind(sep) : s.find(sep);
  if (pos == std::string::npos) {
    return reverse ? Value::tuple({Value(""), Value(""), Value(s)})
                   : Value::tuple({Value(s), Value(""), Value("")});
  }
  return Value::tuple({Value(s.substr(0, pos)), Value(sep), Value(s.substr(pos + sep.size()))});
}

template <bool (*Pred)(std::string_view)>
Value predicate(const Value& self, const CallArgs& a, const TemplateLimits&) {
  expect_no_args("str method", a);
  return Pred(self.as_str());
}

template <std::string (*Fn)(std::string_view)>
Value transform(const Value& self, const CallArgs& a, const TemplateLimits&) {
  expect_no_args("str method", a);
  return Fn(self.as_str());
}

const std::unordered_map<std::string_view, MethodFn>& str_methods() {
  static const std::unordered_map<std::string_view, MethodFn> kMethods = {
      {"upper", &transform<py::upper>},
      {"lower", &transform<py::lower>},
      {"title", &transform<py::title>},
      {"capitalize", &transform<py::capitalize>},
      {"swapcase", &transform<py::swapcase>},
      {"isspace", &predicate<py::isspace>},
      {"isalpha", &predicate<py::isalpha>},
      {"isalnum", &predicate<py::isalnum>},
      {"isdigit", &predicate<py::isdigit>},
      {"isdecimal", &predicate<py::isdecimal>},
      {"isnumeric", &predicate<py::isnumeric>},
      {"islower", &predicate<py::islower>},
      {"isupper", &predicate<py::isupper>},
      {"istitle", &predicate<py::istitle>},
      {"strip", [](const Value& s, const CallArgs& a,
                   const TemplateLimits&) { return strip_method(s, a, "strip", true, true); }},
      {"lstrip", [](const Value& s, const CallArgs& a,
                    const TemplateLimits&) { return strip_method(s, a, "lstrip", true, false); }},
      {"rstrip", [](const Value& s, const CallArgs& a,
                    const TemplateLimits&) { return strip_method(s, a, "rstrip", false, true); }},
      {"startswith", [](const Value& s, const CallArgs& a,
                        const TemplateLimits&) { return affix_test(s, a, "startswith", true); }},
      {"endswith", [](const Value& s, const CallArgs& a,
                      const TemplateLimits&) { return affix_test(s, a, "endswith", false); }},
      {"find", [](const Value& s, const CallArgs& a,
                  const TemplateLimits&) { return find_method(s, a, "find", false, false); }},
      {"rfind", [](const Value& s, const CallArgs& a,
                   const TemplateLimits&) { return find_method(s, a, "rfind", true, false); }},
      {"index", [](const Value& s, const CallArgs& a,
                   const TemplateLimits&) { return find_method(s, a, "index", false, true); }},
      {"rindex", [](const Value& s, const CallArgs& a,
                    const TemplateLimits&) { return find_method(s, a, "rindex", true, true); }},
      {"center", [](const Value& s, const CallArgs& a,
                    const TemplateLimits& lim) { return pad_method(s, a, "center", '^', lim); }},
      {"ljust", [](const Value& s, const CallArgs& a,
                   const TemplateLimits& lim) { return pad_method(s, a, "ljust", '<', lim); }},
      {"rjust", [](const Value& s, const CallArgs& a,
                   const TemplateLimits& lim) { return pad_method(s, a, "rjust", '>', lim); }},
      {"split", [](const Value& s, const CallArgs& a,
                   const TemplateLimits&) { return split_method(s, a, "split", false); }},
      {"rsplit", [](const Value& s, const CallArgs& a,
                    const TemplateLimits&) { return split_method(s, a, "rsplit", true); }},
      {"partition", [](const Value& s, const CallArgs& a,
                       const TemplateLimits&) { return partition_method(s, a, "partition", false); }},
      {"rpartition", [](const Value& s, const CallArgs& a,
                        const TemplateLimits&) { return partition_method(s, a, "rpartition", true); }},
      {"count",
       [](const Value& s, const CallArgs& a, const TemplateLimits&) -> Value {
         const auto v = bind_args("count", a, {required("sub"), Param{"start"}, Param{"end"}});
         return py::count(s.as_str(), str_arg(v[0], "count", 1), opt_index(v[1]), opt_index(v[2]));
       }},
      {"replace",
       [](const Value& s, const CallArgs& a, const TemplateLimits& lim) -> Value {
         const auto v =
             bind_args("replace", a, {required("old"), required("new"), Param{"count", Value(-1)}});
         return py::replace(s.as_str(), str_arg(v[0], "replace", 1), str_arg(v[1], "replace", 2),
                            int_arg(v[2], "count"), lim);
       }},
      {"splitlines",
       [](const Value& s, const CallArgs& a, const TemplateLimits&) -> Value {
         const auto v = bind_args("splitlines", a, {Param{"keepends", Value(false)}});
         return str_list(py::splitlines(s.as_str(), truthy(v[0])));
       }},
      {"zfill",
       [](const Value& s, const CallArgs& a, const TemplateLimits& lim) -> Value {
         const auto v = bind_args("zfill", a, {required("width")});
         return py::zfill(s.as_str(), int_arg(v[0], "width"), lim);
       }},
      {"removeprefix",
       [](const Value& s, const CallArgs& a, const TemplateLimits&) -> Value {
         const auto v = bind_args("removeprefix", a, {required("prefix")});
         const std::string& p = str_arg(v[0], "removeprefix", 1);
         return s.as_str().rfind(p, 0) == 0 ? s.as_str().substr(p.size()) : s.as_str();
       }},
      {"removesuffix",
       [](const Value& s, const CallArgs& a, const TemplateLimits&) -> Value {
         const auto v = bind_args("removesuffix", a, {required("suffix")});
         const std::string& p = str_arg(v[0], "removesuffix", 1);
         if (!p.empty() && py::endswith(s.as_str(), p, std::nullopt, std::nullopt)) {
           return s.as_str().substr(0, s.as_str().size() - p.size());
         }
         return s.as_str();
       }},
      {"join",
       [](const Value& s, const CallArgs& a, const TemplateLimits& lim) -> Value {
         const auto v = bind_args("join", a, {required("iterable")});
         std::string out;
         size_t i = 0;
         for (const Value& item : iterate(v[0])) {
           if (!item.is_string()) {
             throw_error("TypeError", "sequence item {}: expected str instance, {} found", i,
                         item.type_name());
           }
           check_built_size(1, out.size() + s.as_str().size() + item.as_str().size(), lim,
                            "the joined string");
           if (i++) out += s.as_str();
           out += item.as_str();
         }
         return out;
       }},
      {"format",
       [](const Value& s, const CallArgs& a, const TemplateLimits& lim) -> Value {
         return str_format(s.as_str(), a, lim);
       }},
  };
  return kMethods;
}

Value dict_items_view(const Dict& d, SeqKind kind) {
  std::vector<Value> items;
  items.reserve(d.size());
  for (const auto& [k, v] : d.entries()) {
    if (kind == SeqKind::kDictKeys) {
      items.push_back(k);
    } else if (kind == SeqKind::kDictValues) {
      items.push_back(v);
    } else {
      items.push_back(Value::tuple({k, v}));
    }
  }
  return Value::sequence(std::move(items), kind);
}

const std::unordered_map<std::string_view, MethodFn>& dict_methods() {
  static const std::unordered_map<std::string_view, MethodFn> kMethods = {
      {"items",
       [](const Value& s, const CallArgs& a, const TemplateLimits&) {
         expect_no_args("items", a);
         return dict_items_view(s.dict(), SeqKind::kDictItems);
       }},
      {"keys",
       [](const Value& s, const CallArgs& a, const TemplateLimits&) {
         expect_no_args("keys", a);
         return dict_items_view(s.dict(), SeqKind::kDictKeys);
       }},
      {"values",
       [](const Value& s, const CallArgs& a, const TemplateLimits&) {
         expect_no_args("values", a);
         return dict_items_view(s.dict(), SeqKind::kDictValues);
       }},
      {"get",
       [](const Value& s, const CallArgs& a, const TemplateLimits&) -> Value {
         const auto v = bind_args("get", a, {required("key"), Param{"default"}});
         const Value* found = s.dict().find(v[0]);
         return found ? *found : v[1];
       }},
      {"copy",
       [](const Value& s, const CallArgs& a, const TemplateLimits&) -> Value {
         expect_no_args("copy", a);
         return s;
       }},
  };
  return kMethods;
}

Value seq_index(const Value& s, const CallArgs& a, const TemplateLimits&) {
  const auto v = bind_args("index", a, {required("value"), Param{"start"}, Param{"stop"}});
  const auto& items = s.seq().items;
  const auto n = static_cast<int64_t>(items.size());
  const py::SliceBounds b = py::slice_bounds(n, opt_index(v[1]), opt_index(v[2]), std::nullopt);
  for (int64_t i = b.start; i < b.stop; ++i) {
    if (equals(items[static_cast<size_t>(i)], v[0])) return i;
  }
  throw_error("ValueError", "{} is not in {}", to_repr(v[0]), s.type_name());
}

const std::unordered_map<std::string_view, MethodFn>& seq_methods() {
  static const std::unordered_map<std::string_view, MethodFn> kMethods = {
      {"count",
       [](const Value& s, const CallArgs& a, const TemplateLimits&) -> Value {
         const auto v = bind_args("count", a, {required("value")});
         return static_cast<int64_t>(std::count_if(s.seq().items.begin(), s.seq().items.end(),
                                                   [&](const Value& x) { return equals(x, v[0]); }));
       }},
      {"index", &seq_index},
      {"copy",
       [](const Value& s, const CallArgs& a, const TemplateLimits&) -> Value {
         expect_no_args("copy", a);
         return Value::list(s.seq().items);
       }},
  };
  return kMethods;
}

bool is_unsafe(const Value& obj, const std::string& name) {
  static const std::unordered_map<std::string_view, int> kList = {
      {"append", 0}, {"reverse", 0}, {"insert", 0}, {"sort", 0}, {"extend", 0}, {"remove", 0}};
  static const std::unordered_map<std::string_view, int> kDict = {
      {"clear", 0}, {"pop", 0}, {"popitem", 0}, {"setdefault", 0}, {"update", 0}};
  if (obj.is_dict()) return kDict.count(name) > 0;
  if (obj.is_sequence() && obj.seq().kind == SeqKind::kList) return kList.count(name) > 0;
  return false;
}

}  // namespace

std::optional<Value> bound_method(const Value& obj, const std::string& name) {
  const std::unordered_map<std::string_view, MethodFn>* table = nullptr;
  if (obj.is_string()) {
    table = &str_methods();
  } else if (obj.is_dict()) {
    table = &dict_methods();
  } else if (obj.is_sequence()) {
    const SeqKind k = obj.seq().kind;
    if (k == SeqKind::kList || k == SeqKind::kTuple) table = &seq_methods();
    if (k == SeqKind::kTuple && name == "copy") return std::nullopt;
  }
  if (table == nullptr) return std::nullopt;
  if (is_unsafe(obj, name)) return unsafe_method(obj, name);
  if (obj.is_sequence() && obj.seq().kind == SeqKind::kList && (name == "pop" || name == "clear")) {
    // jinja2's immutable sandbox lets these through (they are missing from its mutable-method table), but
    // this interpreter's lists are immutable: refuse loudly rather than render something different.
    throw_error("TemplateRuntimeError", "list.{}() is not supported: template lists are immutable", name);
  }
  auto it = table->find(name);
  if (it == table->end()) return std::nullopt;
  return make_method(obj, std::string(name), it->second);
}

}  // namespace tandem::tmpl
