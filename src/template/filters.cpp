#include "template/filters.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include "core/utf8.h"
#include "template/access.h"
#include "template/call_args.h"
#include "template/json_dumps.h"
#include "template/py_format.h"
#include "template/py_ops.h"
#include "template/py_string.h"
#include "template/render_error.h"
#include "template/renderer.h"
#include "template/unicode.h"

namespace tandem::tmpl {
namespace {

// ---------------------------------------------------------------- helpers

// soft_str: Markup stays Markup, everything else goes through str().
std::string soft_str(const Value& v) {
  return to_str(v);
}

// markupsafe.Markup's str methods (upper, strip, center, slicing, ...) return Markup again.
Value like(const Value& input, std::string out) {
  return input.is_markup() ? Value::markup(std::move(out)) : Value(std::move(out));
}

[[noreturn]] void filter_argument_error(const std::string& message) {
  throw RenderError("FilterArgumentError", message);
}

int64_t int_param(const Value& v, const char* filter, const char* param) {
  if (v.is_integral()) return v.as_integral();
  if (v.is_undefined()) fail_undefined(v.as_undefined());
  throw_error("TypeError", "{}() argument '{}' must be int, not {}", filter, param, v.type_name());
}

// jinja2.filters._prepare_attribute_parts: "a.0.b" -> ["a", 0, "b"].
std::vector<Value> attribute_parts(const Value& attribute) {
  if (attribute.is_none()) return {};
  if (!attribute.is_string()) return {attribute};
  std::vector<Value> parts;
  for (std::string& part : py::split(attribute.as_str(), std::string("."), -1)) {
    if (py::isdigit(part)) {
      parts.emplace_back(static_cast<int64_t>(std::stoll(part)));
    } else {
      parts.emplace_back(std::move(part));
    }
  }
  return parts;
}

Value lower_if_string(const Value& v) {
  return v.is_string() ? Value(py::lower(v.as_str())) : v;
}

// jinja2.filters.make_attrgetter.
struct AttrGetter {
  std::vector<Value> parts;
  Value default_value = Value(None{});
  bool ignore_case = false;

  Value operator()(Value item) const {
    for (const Value& part : parts) {
      item = get_item(item, part);
      if (!default_value.is_none() && item.is_undefined()) item = default_value;
    }
    return ignore_case ? lower_if_string(item) : item;
  }
};

// jinja2.filters.make_multi_attrgetter ("a,b" sorts by several attributes); returns a list key.
struct MultiAttrGetter {
  std::vector<std::vector<Value>> parts;
  bool ignore_case = false;

  Value operator()(const Value& item) const {
    std::vector<Value> keys;
    for (const auto& chain : parts) {
      Value v = item;
      for (const Value& part : chain) v = get_item(v, part);
      keys.push_back(ignore_case ? lower_if_string(v) : v);
    }
    return Value::list(std::move(keys));
  }
};

MultiAttrGetter multi_attrgetter(const Value& attribute, bool ignore_case) {
  MultiAttrGetter g;
  g.ignore_case = ignore_case;
  if (attribute.is_string()) {
    for (std::string& piece : py::split(attribute.as_str(), std::string(","), -1)) {
      g.parts.push_back(attribute_parts(Value(std::move(piece))));
    }
  } else {
    g.parts.push_back(attribute_parts(attribute));
  }
  return g;
}

std::vector<Value> sorted_by(std::vector<Value> items, const std::function<Value(const Value&)>& key,
                             bool reverse) {
  std::vector<std::pair<Value, Value>> keyed;
  keyed.reserve(items.size());
  for (Value& item : items) {
    Value k = key(item);
    keyed.emplace_back(std::move(k), std::move(item));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& a, const auto& b) {
    return reverse ? less_than(b.first, a.first) : less_than(a.first, b.first);
  });
  std::vector<Value> out;
  out.reserve(keyed.size());
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return out;
}

// Python float(str): surrounding whitespace, underscores between digits, inf/nan spellings.
std::optional<double> parse_py_float(const std::string& text) {
  std::string s = py::strip(text, std::nullopt, true, true);
  std::string cleaned;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      const bool ok = i > 0 && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i - 1])) &&
                      std::isdigit(static_cast<unsigned char>(s[i + 1]));
      if (!ok) return std::nullopt;
      continue;
    }
    cleaned.push_back(s[i]);
  }
  if (cleaned.empty()) return std::nullopt;
  std::string lower = py::lower(cleaned);
  size_t sign_len = (lower[0] == '+' || lower[0] == '-') ? 1 : 0;
  const std::string body = lower.substr(sign_len);
  const double sign = (sign_len && lower[0] == '-') ? -1.0 : 1.0;
  if (body == "inf" || body == "infinity") return sign * HUGE_VAL;
  if (body == "nan") return std::nan("");
  // Only decimal digits, one point and an exponent: strtod would also take hex floats and "infinity".
  bool digits = false;
  for (char c : body) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      digits = true;
    } else if (c != '.' && c != 'e' && c != '+' && c != '-') {
      return std::nullopt;
    }
  }
  if (!digits) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double d = std::strtod(cleaned.c_str(), &end);
  if (end != cleaned.c_str() + cleaned.size()) return std::nullopt;
  return d;
}

// Python int(str, base).
std::optional<int64_t> parse_py_int(const std::string& text, int64_t base) {
  std::string s = py::strip(text, std::nullopt, true, true);
  bool negative = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  auto has_prefix = [&](char p) { return i + 1 < s.size() && s[i] == '0' && (s[i + 1] | 0x20) == p; };
  if (base == 0) {
    base = has_prefix('x') ? 16 : has_prefix('o') ? 8 : has_prefix('b') ? 2 : 10;
    if (base == 10 && i + 1 < s.size() && s[i] == '0') {
      // int("010", 0) is an error in Python 3; only zeros may follow a leading zero.
      for (size_t k = i; k < s.size(); ++k) {
        if (s[k] != '0' && s[k] != '_') return std::nullopt;
      }
    }
  }
  if ((base == 16 && has_prefix('x')) || (base == 8 && has_prefix('o')) || (base == 2 && has_prefix('b'))) {
    i += 2;
    if (i < s.size() && s[i] == '_') ++i;
  }
  if (base < 2 || base > 36 || i >= s.size()) return std::nullopt;
  int64_t value = 0;
  bool last_underscore = true;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_') {
      if (last_underscore) return std::nullopt;
      last_underscore = true;
      continue;
    }
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
      digit = (c | 0x20) - 'a' + 10;
    } else {
      return std::nullopt;
    }
    if (digit >= base) return std::nullopt;
    value = checked_add(checked_mul(value, base), digit);
    last_underscore = false;
  }
  if (last_underscore) return std::nullopt;
  return negative ? -value : value;
}

std::string indent_text(const Value& v, const Value& width, bool first, bool blank,
                        const TemplateLimits& limits) {
  if (!v.is_string()) {
    if (v.is_undefined()) fail_undefined(v.as_undefined());
    // `s += "\n"` extends a list in place, then .splitlines() is missing.
    if (v.is_sequence() && v.seq().kind == SeqKind::kList) {
      throw_error("AttributeError", "'list' object has no attribute 'splitlines'");
    }
    throw_error("TypeError", "unsupported operand type(s) for +=: '{}' and 'str'", v.type_name());
  }
  std::string indention;
  if (width.is_string()) {
    indention = width.as_str();
  } else if (width.is_integral()) {
    check_built_size(width.as_integral(), 1, limits, "an indent width");
    for (int64_t i = 0; i < width.as_integral(); ++i) indention.push_back(' ');
  } else {
    throw_error("TypeError", "can't multiply sequence by non-int of type '{}'", width.type_name());
  }
  const std::vector<std::string> lines = py::splitlines(v.as_str() + "\n", false);
  // Every line gets the indent: refuse before building when lines x indent alone passes the limit.
  if (!indention.empty())
    check_built_size(static_cast<int64_t>(lines.size()), indention.size(), limits, "the indented string");
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) rv += "\n" + indention;
      rv += lines[i];
    }
  } else {
    rv = lines.empty() ? std::string() : lines[0];
    if (lines.size() > 1) {
      rv += "\n";
      for (size_t i = 1; i < lines.size(); ++i) {
        if (i > 1) rv += "\n";
        if (!lines[i].empty()) rv += indention;
        rv += lines[i];
      }
    }
  }
  if (first) rv = indention + rv;
  return rv;
}

Value round_value(const Value& v, int64_t precision, const std::string& method) {
  if (method != "common" && method != "ceil" && method != "floor") {
    filter_argument_error("method must be common, ceil or floor");
  }
  // 'common' calls round(value); 'ceil'/'floor' first compute value * 10**precision.
  if (v.is_undefined() && method != "common") fail_undefined(v.as_undefined());
  if (!v.is_number()) {
    throw_error("TypeError", "type {} doesn't define __round__ method", v.type_name());
  }
  if (method == "common") {
    if (v.is_integral()) {
      // round(int, ndigits) stays an int; negative ndigits round half to even at that power of ten.
      const int64_t x = v.as_integral();
      if (precision >= 0) return x;
      if (precision < -18) return int64_t{0};
      int64_t p = 1;
      for (int64_t i = 0; i < -precision; ++i) p *= 10;
      int64_t q = x / p;
      int64_t r = x % p;
      if (r < 0) {
        r += p;
        --q;
      }
      if (2 * r > p || (2 * r == p && (q % 2 != 0))) ++q;
      return checked_mul(q, p);
    }
    const double x = v.as_float();
    if (!std::isfinite(x)) return x;
    if (precision >= 0) {
      // Correctly rounded (half to even on the exact binary value), like CPython's dtoa-based round().
      char buf[512];
      std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(std::min<int64_t>(precision, 300)), x);
      return std::strtod(buf, nullptr);
    }
    const double p = std::pow(10.0, static_cast<double>(-precision));
    return std::nearbyint(x / p) * p;
  }
  const double p = std::pow(10.0, static_cast<double>(precision));
  const double scaled = v.as_double() * p;
  return (method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / p;
}

// Jinja's title filter: capitalizes after runs of whitespace, '-', '(', '{', '[' and '<'.
std::string jinja_title(const std::string& s) {
  const std::u32string u = unicode::to_u32(s);
  auto is_boundary = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || unicode::is_space(c);
  };
  std::string out;
  size_t i = 0;
  while (i < u.size()) {
    const size_t j = i;
    const bool boundary = is_boundary(u[i]);
    while (i < u.size() && is_boundary(u[i]) == boundary) ++i;
    const std::u32string_view item(u.data() + j, i - j);
    if (boundary) {
      out += unicode::to_utf8(item);
    } else {
      out += py::upper(unicode::to_utf8(item.substr(0, 1)));
      out += py::lower(unicode::to_utf8(item.substr(1)));
    }
  }
  return out;
}

// Python floor division for the slice filter's arithmetic (slices > 0 here).
int64_t py_floordiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Type of reversed(value), shown when the result is printed.
const char* reversed_iterator_type(const Value& v) {
  if (v.is_dict()) return "dict_reversekeyiterator";
  if (!v.is_sequence()) return "reversed";
  switch (v.seq().kind) {
    case SeqKind::kList:
      return "list_reverseiterator";
    case SeqKind::kRange:
      return "range_iterator";
    case SeqKind::kDictKeys:
      return "dict_reversekeyiterator";
    case SeqKind::kDictValues:
      return "dict_reversevalueiterator";
    case SeqKind::kDictItems:
      return "dict_reverseitemiterator";
    default:
      return "reversed";
  }
}

// Filter and test names plus their arguments as passed to map()/select(): args[offset:].
CallArgs tail_args(const CallArgs& a, size_t offset) {
  CallArgs out;
  for (size_t i = offset; i < a.args.size(); ++i) out.args.push_back(a.args[i]);
  out.kwargs = a.kwargs;
  return out;
}

std::string name_arg(const Value& v) {
  if (!v.is_string()) throw_error("TypeError", "filter or test name must be a string, not {}", v.type_name());
  return v.as_str();
}

// What a filter building a list item by item has used: one render step per item and the bytes the items hold
// (strings are copied into the list), so `big|map('center', 10**6)` stops at TemplateLimits::max_output_bytes
// instead of building every item first.
class ItemBudget {
 public:
  explicit ItemBudget(Renderer& r) : r_(r) {}
  Value take(Value item) {
    r_.step();
    bytes_ += std::min(held_bytes(item), r_.limits().max_output_bytes) + 16;  // no wrap-around
    if (bytes_ > r_.limits().max_output_bytes)
      throw_limit("the list the filter builds", "max_output_bytes", r_.limits().max_output_bytes);
    return item;
  }

 private:
  Renderer& r_;
  size_t bytes_ = 0;
};

// The body of jinja2.filters.select_or_reject (a generator: it runs when the result is consumed).
std::vector<Value> select_or_reject_items(Renderer& r, const Value& value, const CallArgs& a, bool select,
                                          bool lookup_attr) {
  std::vector<Value> out;
  if (!truthy(value)) return out;
  size_t offset = 0;
  AttrGetter getter;
  if (lookup_attr) {
    if (a.args.empty()) filter_argument_error("Missing parameter for attribute name");
    getter.parts = attribute_parts(a.args[0]);
    offset = 1;
  }
  const bool has_test = a.args.size() > offset;
  const std::string test = has_test ? name_arg(a.args[offset]) : std::string();
  const CallArgs test_args = has_test ? tail_args(a, offset + 1) : CallArgs{};
  ItemBudget budget(r);
  for (const Value& item : iterate(value)) {
    const Value subject = lookup_attr ? getter(item) : item;
    const bool ok = has_test ? r.apply_test(test, subject, test_args) : truthy(subject);
    if (ok == select) out.push_back(budget.take(item));
  }
  return out;
}

Value select_or_reject(Renderer& r, const Value& value, const CallArgs& a, bool select, bool lookup_attr) {
  return Value::generator("select_or_reject", [rp = &r, value, a, select, lookup_attr] {
    return select_or_reject_items(*rp, value, a, select, lookup_attr);
  });
}

// The body of jinja2.filters.sync_do_map (a generator).
std::vector<Value> map_items(Renderer& r, const Value& value, const CallArgs& a) {
  std::vector<Value> out;
  if (!truthy(value)) return out;
  const bool by_attribute =
      a.args.empty() &&
      std::any_of(a.kwargs.begin(), a.kwargs.end(), [](const auto& kv) { return kv.first == "attribute"; });
  if (by_attribute) {
    AttrGetter getter;
    for (const auto& [k, v] : a.kwargs) {
      if (k == "attribute") {
        getter.parts = attribute_parts(v);
      } else if (k == "default") {
        getter.default_value = v;
      } else {
        filter_argument_error(fmt::format("Unexpected keyword argument '{}'", k));
      }
    }
    ItemBudget budget(r);
    for (const Value& item : iterate(value)) out.push_back(budget.take(getter(item)));
    return out;
  }
  if (a.args.empty()) filter_argument_error("map requires a filter argument");
  const std::string name = name_arg(a.args[0]);
  const CallArgs rest = tail_args(a, 1);
  ItemBudget budget(r);
  for (const Value& item : iterate(value)) out.push_back(budget.take(r.apply_filter(name, item, rest)));
  return out;
}

Value do_map(Renderer& r, const Value& value, const CallArgs& a) {
  return Value::generator("sync_do_map", [rp = &r, value, a] { return map_items(*rp, value, a); });
}

Value min_or_max(const Value& value, const CallArgs& a, bool want_max, const char* name) {
  const auto v = bind_args(name, a, {Param{"case_sensitive", Value(false)}, Param{"attribute"}});
  const std::vector<Value> items = iterate(value);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  AttrGetter key{attribute_parts(v[1]), Value(None{}), !truthy(v[0])};
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    // max keeps the first of equal maxima (replaces only on strictly greater); min likewise.
    if (want_max ? less_than(best_key, k) : less_than(k, best_key)) {
      best = i;
      best_key = std::move(k);
    }
  }
  return items[best];
}

Value tojson(const Value& value, const CallArgs& a, const TemplateLimits& limits) {
  const auto v = bind_args("tojson", a,
                           {Param{"ensure_ascii", Value(false)}, Param{"indent"}, Param{"separators"},
                            Param{"sort_keys", Value(false)}});
  JsonDumpOptions o;
  o.ensure_ascii = truthy(v[0]);
  if (v[1].is_string()) {
    o.indent = v[1].as_str();
  } else if (v[1].is_integral()) {
    check_built_size(v[1].as_integral(), 1, limits, "a tojson indent");
    o.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, v[1].as_integral())), ' ');
  } else if (!v[1].is_none()) {
    throw_error("TypeError", "tojson indent must be an int or a str, not {}", v[1].type_name());
  }
  if (!v[2].is_none()) {
    const std::vector<Value> seps = iterate(v[2]);
    if (seps.size() != 2 || !seps[0].is_string() || !seps[1].is_string()) {
      throw_error("ValueError", "tojson separators must be a pair of strings");
    }
    o.separators = std::make_pair(seps[0].as_str(), seps[1].as_str());
  }
  o.sort_keys = truthy(v[3]);
  o.max_bytes = limits.max_output_bytes;
  return json_dumps(value, o);
}

// ---------------------------------------------------------------- registry

using Registry = std::unordered_map<std::string_view, FilterFn>;

const Registry& registry() {
  static const Registry kFilters = {
      {"abs",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("abs", a);
         if (v.is_float()) return std::fabs(v.as_float());
         if (v.is_integral()) {
           const int64_t x = v.as_integral();
           return x < 0 ? checked_mul(x, -1) : x;
         }
         if (v.is_undefined()) throw_error("TypeError", "bad operand type for abs(): 'Undefined'");
         throw_error("TypeError", "bad operand type for abs(): '{}'", v.type_name());
       }},
      {"attr",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("attr", a, {required("name")});
         if (v.is_undefined()) fail_undefined(v.as_undefined());
         if (!p[0].is_string())
           throw_error("TypeError", "attribute name must be string, not '{}'", p[0].type_name());
         if (std::optional<Value> attr = python_attribute(v, p[0].as_str())) return *attr;
         return Value::undefined(fmt::format("{} has no attribute {}", py_str_repr(object_type_repr(v)),
                                             py_str_repr(p[0].as_str())));
       }},
      {"batch",
       [](Renderer& r, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("batch", a, {required("linecount"), Param{"fill_with"}});
         const int64_t n = int_param(p[0], "batch", "linecount");
         // The last batch is filled up to n items: refuse an n that would build more than the limit allows.
         if (!p[1].is_none()) check_built_size(n, 16 + held_bytes(p[1]), r.limits(), "the filled batch");
         return Value::generator("do_batch", [v, n, fill = p[1]] {
           std::vector<Value> out;
           std::vector<Value> tmp;
           for (const Value& item : iterate(v)) {
             if (static_cast<int64_t>(tmp.size()) == n) {
               out.push_back(Value::list(std::move(tmp)));
               tmp.clear();
             }
             tmp.push_back(item);
           }
           if (!tmp.empty()) {
             if (!fill.is_none()) {
               while (static_cast<int64_t>(tmp.size()) < n) tmp.push_back(fill);
             }
             out.push_back(Value::list(std::move(tmp)));
           }
           return out;
         });
       }},
      {"capitalize",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("capitalize", a);
         return like(v, py::capitalize(soft_str(v)));
       }},
      {"center",
       [](Renderer& r, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("center", a, {Param{"width", Value(80)}});
         return like(v, py::pad(soft_str(v), int_param(p[0], "center", "width"), " ", '^', r.limits()));
       }},
      {"count",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("count", a);
         return py_len(v);
       }},
      {"length",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("length", a);
         return py_len(v);
       }},
      {"default",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         const auto p =
             bind_args("default", a, {Param{"default_value", Value("")}, Param{"boolean", Value(false)}});
         if (v.is_undefined() || (truthy(p[1]) && !truthy(v))) return p[0];
         return v;
       }},
      {"dictsort",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("dictsort", a,
                                  {Param{"case_sensitive", Value(false)}, Param{"by", Value("key")},
                                   Param{"reverse", Value(false)}});
         size_t pos;
         if (p[1].is_string() && p[1].as_str() == "key") {
           pos = 0;
         } else if (p[1].is_string() && p[1].as_str() == "value") {
           pos = 1;
         } else {
           filter_argument_error("You can only sort by either \"key\" or \"value\"");
         }
         if (v.is_undefined()) fail_undefined(v.as_undefined());
         if (!v.is_dict())
           throw_error("AttributeError", "'{}' object has no attribute 'items'", v.type_name());
         std::vector<Value> items;
         for (const auto& [k, value] : v.dict().entries()) items.push_back(Value::tuple({k, value}));
         const bool ignore_case = !truthy(p[0]);
         return Value::list(sorted_by(
             std::move(items),
             [pos, ignore_case](const Value& item) {
               const Value& x = item.seq().items[pos];
               return ignore_case ? lower_if_string(x) : x;
             },
             truthy(p[2])));
       }},
      {"escape",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("escape", a);
         return v.is_markup() ? v : Value::markup(html_escape(soft_str(v)));
       }},
      {"first",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("first", a);
         if (v.is_sequence() && v.seq().kind == SeqKind::kIterator) {
           const Sequence& s = v.seq();
           const std::vector<Value>& items = s.iterator_items();
           if (s.cursor < items.size()) return items[s.cursor++];
           return Value::undefined("No first item, sequence was empty.");
         }
         const std::vector<Value> items = iterate(v);
         if (items.empty()) return Value::undefined("No first item, sequence was empty.");
         return items.front();
       }},
      {"last",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("last", a);
         if (v.is_sequence() && v.seq().kind == SeqKind::kIterator) {
           throw_error("TypeError", "'{}' object is not reversible", v.type_name());
         }
         if (!v.is_undefined() && !v.is_string() && !v.is_sequence() && !v.is_dict()) {
           throw_error("TypeError", "'{}' object is not reversible", v.type_name());
         }
         const std::vector<Value> items = iterate(v);
         if (items.empty()) return Value::undefined("No last item, sequence was empty.");
         return items.back();
       }},
      {"float",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("float", a, {Param{"default", Value(0.0)}});
         if (v.is_float()) return v;
         if (v.is_integral()) return static_cast<double>(v.as_integral());
         if (v.is_undefined()) fail_undefined(v.as_undefined());
         if (v.is_string()) {
           if (std::optional<double> d = parse_py_float(v.as_str())) return *d;
         }
         return p[0];
       }},
      {"format",
       [](Renderer& r, const Value& v, const CallArgs& a) -> Value {
         if (!a.args.empty() && !a.kwargs.empty()) {
           filter_argument_error("can't handle positional and keyword arguments at the same time");
         }
         if (!a.kwargs.empty()) {
           auto d = std::make_shared<Dict>();
           for (const auto& [k, item] : a.kwargs) d->set(Value(k), item);
           return percent_format(soft_str(v), Value(std::shared_ptr<const Dict>(std::move(d))), r.limits());
         }
         return percent_format(soft_str(v), Value::tuple(a.args), r.limits());
       }},
      {"indent",
       [](Renderer& r, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args(
             "indent", a,
             {Param{"width", Value(4)}, Param{"first", Value(false)}, Param{"blank", Value(false)}});
         return indent_text(v, p[0], truthy(p[1]), truthy(p[2]), r.limits());
       }},
      {"int",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("int", a, {Param{"default", Value(0)}, Param{"base", Value(10)}});
         if (v.is_integral()) return v.as_integral();
         if (v.is_undefined()) fail_undefined(v.as_undefined());
         if (v.is_float()) {
           const double d = v.as_float();
           if (std::isnan(d)) return p[0];
           if (std::isinf(d)) throw_error("OverflowError", "cannot convert float infinity to integer");
           if (std::fabs(d) >= 9.2e18)
             throw_error("OverflowError", "integer overflow: Python big integers are not supported");
           return static_cast<int64_t>(std::trunc(d));
         }
         if (v.is_string()) {
           if (std::optional<int64_t> i = parse_py_int(v.as_str(), int_param(p[1], "int", "base"))) return *i;
           // "42.23"|int gives 42 through int(float(value)).
           if (std::optional<double> d = parse_py_float(v.as_str())) {
             if (std::isfinite(*d) && std::fabs(*d) < 9.2e18) return static_cast<int64_t>(std::trunc(*d));
             if (std::isinf(*d)) throw_error("OverflowError", "cannot convert float infinity to integer");
           }
         }
         return p[0];
       }},
      {"items",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("items", a);
         return Value::generator("do_items", [v] {
           std::vector<Value> out;
           if (v.is_undefined()) return out;
           if (!v.is_dict()) throw_error("TypeError", "Can only get item pairs from a mapping.");
           for (const auto& [k, value] : v.dict().entries()) out.push_back(Value::tuple({k, value}));
           return out;
         });
       }},
      {"join",
       [](Renderer& r, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("join", a, {Param{"d", Value("")}, Param{"attribute"}});
         const std::string sep = to_str(p[0]);
         const AttrGetter getter{attribute_parts(p[1])};
         std::string out;
         bool first = true;
         for (const Value& item : iterate(v)) {
           const std::string text = to_str(p[1].is_none() ? item : getter(item));
           check_built_size(1, out.size() + sep.size() + text.size(), r.limits(), "the joined string");
           if (!first) out += sep;
           first = false;
           out += text;
         }
         return out;
       }},
      {"list",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("list", a);
         return Value::list(iterate(v));
       }},
      {"lower",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("lower", a);
         return like(v, py::lower(soft_str(v)));
       }},
      {"upper",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("upper", a);
         return like(v, py::upper(soft_str(v)));
       }},
      {"map", &do_map},
      {"max", [](Renderer&, const Value& v, const CallArgs& a) { return min_or_max(v, a, true, "max"); }},
      {"min", [](Renderer&, const Value& v, const CallArgs& a) { return min_or_max(v, a, false, "min"); }},
      {"reject", [](Renderer& r, const Value& v,
                    const CallArgs& a) { return select_or_reject(r, v, a, false, false); }},
      {"rejectattr",
       [](Renderer& r, const Value& v, const CallArgs& a) { return select_or_reject(r, v, a, false, true); }},
      {"select",
       [](Renderer& r, const Value& v, const CallArgs& a) { return select_or_reject(r, v, a, true, false); }},
      {"selectattr",
       [](Renderer& r, const Value& v, const CallArgs& a) { return select_or_reject(r, v, a, true, true); }},
      {"replace",
       [](Renderer& r, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("replace", a, {required("old"), required("new"), Param{"count"}});
         const int64_t count = p[2].is_none() ? -1 : int_param(p[2], "replace", "count");
         return py::replace(soft_str(v), to_str(p[0]), to_str(p[1]), count, r.limits());
       }},
      {"reverse",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("reverse", a);
         if (v.is_string()) return like(v, py::reversed(v.as_str()));
         if (v.is_sequence() && v.seq().kind == SeqKind::kIterator) {
           // reversed(generator) fails, so Jinja falls back to list(value) reversed: a list. A TypeError
           // while consuming the generator becomes "argument must be iterable".
           std::vector<Value> items;
           try {
             items = iterate(v);
           } catch (const RenderError& e) {
             if (e.kind() == "TypeError") filter_argument_error("argument must be iterable");
             throw;
           }
           std::reverse(items.begin(), items.end());
           return Value::list(std::move(items));
         }
         if (!v.is_undefined() && !v.is_sequence() && !v.is_dict())
           filter_argument_error("argument must be iterable");
         std::vector<Value> items = iterate(v);
         std::reverse(items.begin(), items.end());
         return Value::iterator(std::move(items), reversed_iterator_type(v));
       }},
      {"round",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         const auto p =
             bind_args("round", a, {Param{"precision", Value(0)}, Param{"method", Value("common")}});
         return round_value(v, int_param(p[0], "round", "precision"), to_str(p[1]));
       }},
      {"safe",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("safe", a);
         return Value::markup(soft_str(v));
       }},
      {"slice",
       [](Renderer& r, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("slice", a, {required("slices"), Param{"fill_with"}});
         const int64_t slices = int_param(p[0], "slice", "slices");
         check_built_size(slices, 16 + held_bytes(p[1]), r.limits(), "the sliced list");
         return Value::generator("sync_do_slice", [v, slices, fill = p[1]] {
           const std::vector<Value> seq = iterate(v);
           const auto length = static_cast<int64_t>(seq.size());
           if (slices == 0) throw_error("ZeroDivisionError", "integer division or modulo by zero");
           const int64_t per = py_floordiv(length, slices);
           const int64_t with_extra = length - per * slices;
           int64_t offset = 0;
           std::vector<Value> out;
           for (int64_t n = 0; n < slices; ++n) {
             const int64_t start = offset + n * per;
             if (n < with_extra) ++offset;
             const int64_t end = offset + (n + 1) * per;
             std::vector<Value> part(seq.begin() + start, seq.begin() + end);
             if (!fill.is_none() && n >= with_extra) part.push_back(fill);
             out.push_back(Value::list(std::move(part)));
           }
           return out;
         });
       }},
      {"sort",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args(
             "sort", a,
             {Param{"reverse", Value(false)}, Param{"case_sensitive", Value(false)}, Param{"attribute"}});
         const MultiAttrGetter key = multi_attrgetter(p[2], !truthy(p[1]));
         return Value::list(sorted_by(iterate(v), key, truthy(p[0])));
       }},
      {"string",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("string", a);
         return v.is_string() ? v : Value(to_str(v));
       }},
      {"sum",
       [](Renderer& r, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("sum", a, {Param{"attribute"}, Param{"start", Value(0)}});
         const AttrGetter getter{attribute_parts(p[0])};
         Value rv = p[1];
         for (const Value& item : iterate(v)) {
           r.step();  // summing lists copies the running total each time
           rv = binary_op(BinaryOp::kAdd, rv, p[0].is_none() ? item : getter(item), r.limits());
         }
         return rv;
       }},
      {"title",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("title", a);
         return jinja_title(soft_str(v));
       }},
      {"trim",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("trim", a, {Param{"chars"}});
         std::optional<std::string> chars;
         if (!p[0].is_none()) {
           if (!p[0].is_string()) throw_error("TypeError", "strip arg must be None or str");
           chars = p[0].as_str();
         }
         return like(v, py::strip(soft_str(v), chars, true, true));
       }},
      {"truncate",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("truncate", a,
                                  {Param{"length", Value(255)}, Param{"killwords", Value(false)},
                                   Param{"end", Value("...")}, Param{"leeway"}});
         const std::string s = soft_str(v);
         const int64_t length = int_param(p[0], "truncate", "length");
         const std::string end = to_str(p[2]);
         const int64_t leeway = p[3].is_none() ? 5 : int_param(p[3], "truncate", "leeway");
         const auto end_len = static_cast<int64_t>(unicode::length(end));
         if (length < end_len)
           throw_error("AssertionError", "expected length >= {}, got {}", end_len, length);
         if (leeway < 0) throw_error("AssertionError", "expected leeway >= 0, got {}", leeway);
         if (static_cast<int64_t>(unicode::length(s)) <= length + leeway) return s;
         const std::string head = py::slice(s, py::slice_bounds(static_cast<int64_t>(unicode::length(s)), 0,
                                                                length - end_len, std::nullopt));
         if (truthy(p[1])) return head + end;
         return py::rsplit(head, std::string(" "), 1)[0] + end;
       }},
      {"unique",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         const auto p = bind_args("unique", a, {Param{"case_sensitive", Value(false)}, Param{"attribute"}});
         const AttrGetter key{attribute_parts(p[1]), Value(None{}), !truthy(p[0])};
         return Value::generator("do_unique", [v, key] {
           std::unordered_set<std::string> seen;
           std::vector<Value> out;
           for (const Value& item : iterate(v)) {
             if (seen.insert(hash_key(key(item))).second) out.push_back(item);
           }
           return out;
         });
       }},
      {"wordcount",
       [](Renderer&, const Value& v, const CallArgs& a) -> Value {
         expect_no_args("wordcount", a);
         const std::string s = soft_str(v);
         int64_t words = 0;
         bool in_word = false;
         size_t pos = 0;
         while (pos < s.size()) {
           const char32_t c = utf8::decode(s, pos);
           const bool w = c == '_' || unicode::is_alnum(c);
           if (w && !in_word) ++words;
           in_word = w;
         }
         return words;
       }},
      {"tojson", [](Renderer& r, const Value& v, const CallArgs& a) { return tojson(v, a, r.limits()); }},
  };
  return kFilters;
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  if (name == "d") name = "default";
  if (name == "e") name = "escape";
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : it->second;
}

bool has_filter(std::string_view name) {
  return find_filter(name) != nullptr;
}

}  // namespace tandem::tmpl
