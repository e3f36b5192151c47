#include "template/py_ops.h"

#include <algorithm>
#include <cmath>

#include "template/py_format.h"
#include "template/py_string.h"
#include "template/render_error.h"
#include "template/unicode.h"

namespace tandem::tmpl {
namespace {

const char* op_symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kFloorDiv:
      return "//";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kPow:
      return "** or pow()";
    default:
      return "?";
  }
}

[[noreturn]] void unsupported(BinaryOp op, const Value& a, const Value& b) {
  throw_error("TypeError", "unsupported operand type(s) for {}: '{}' and '{}'", op_symbol(op), a.type_name(),
              b.type_name());
}

// CPython float_divmod: returns {floordiv, mod}.
std::pair<double, double> float_divmod(double vx, double wx) {
  double mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0.0) {
    if ((wx < 0) != (mod < 0)) {
      mod += wx;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, wx);
  }
  double floordiv;
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, vx / wx);
  }
  return {floordiv, mod};
}

int64_t int_floordiv(int64_t a, int64_t b) {
  if (b == 0) throw_error("ZeroDivisionError", "integer division or modulo by zero");
  if (a == std::numeric_limits<int64_t>::min() && b == -1) {
    throw_error("OverflowError", "integer overflow: Python big integers are not supported");
  }
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t int_mod(int64_t a, int64_t b) {
  if (b == 0) throw_error("ZeroDivisionError", "integer modulo by zero");
  if (b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

Value int_pow(int64_t base, int64_t exp) {
  if (exp < 0) {
    if (base == 0) throw_error("ZeroDivisionError", "0.0 cannot be raised to a negative power");
    return std::pow(static_cast<double>(base), static_cast<double>(exp));
  }
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) result = checked_mul(result, base);
    exp >>= 1;
    if (exp > 0) base = checked_mul(base, base);
  }
  return result;
}

// A list built by repetition or concatenation: its items within max_output_bytes / 16 and the bytes its items
// hold (strings are copied into it) within max_output_bytes, checked before anything is copied.
void check_built_list(uint64_t items, uint64_t held, const TemplateLimits& limits, const char* what) {
  if (items > limits.max_output_bytes / 16 || held > limits.max_output_bytes)
    throw_limit(what, "max_output_bytes", limits.max_output_bytes);
}

Value repeat(const Value& seq, int64_t n, const TemplateLimits& limits) {
  if (seq.is_string()) {
    const std::string& s = seq.as_str();
    if (n <= 0 || s.empty()) return seq.is_markup() ? Value::markup("") : Value("");
    check_built_size(n, s.size(), limits, "the repeated string");
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += s;
    return seq.is_markup() ? Value::markup(std::move(out)) : Value(std::move(out));
  }
  const Sequence& s = seq.seq();
  std::vector<Value> items;
  if (n > 0 && !s.items.empty()) {
    const auto count = static_cast<uint64_t>(n);
    const uint64_t per_copy = std::max<uint64_t>(s.bytes, 1);
    check_built_list(count > UINT64_MAX / s.items.size() ? UINT64_MAX : count * s.items.size(),
                     count > UINT64_MAX / per_copy ? UINT64_MAX : count * per_copy, limits,
                     "the repeated list");
    items.reserve(s.items.size() * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) items.insert(items.end(), s.items.begin(), s.items.end());
  }
  return Value::sequence(std::move(items), s.kind == SeqKind::kTuple ? SeqKind::kTuple : SeqKind::kList);
}

bool is_list_or_tuple(const Value& v) {
  return v.is_sequence() && (v.seq().kind == SeqKind::kList || v.seq().kind == SeqKind::kTuple);
}

Value add(const Value& a, const Value& b, const TemplateLimits& limits) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return checked_add(a.as_integral(), b.as_integral());
    return a.as_double() + b.as_double();
  }
  if (a.is_string() && b.is_string()) {
    // Doubling a string in a loop reaches any size in a few dozen steps: refuse before building it.
    check_built_size(1, a.as_str().size() + b.as_str().size(), limits, "the concatenated string");
    // markupsafe.Markup.__add__/__radd__ escape the plain operand and return Markup.
    if (a.is_markup() || b.is_markup()) {
      const std::string left = a.is_markup() ? a.as_str() : html_escape(a.as_str());
      const std::string right = b.is_markup() ? b.as_str() : html_escape(b.as_str());
      return Value::markup(left + right);
    }
    return a.as_str() + b.as_str();
  }
  if (is_list_or_tuple(a) && is_list_or_tuple(b) && a.seq().kind == b.seq().kind) {
    check_built_list(a.seq().items.size() + b.seq().items.size(), a.seq().bytes + b.seq().bytes, limits,
                     "the concatenated list");
    std::vector<Value> items = a.seq().items;
    items.insert(items.end(), b.seq().items.begin(), b.seq().items.end());
    return Value::sequence(std::move(items), a.seq().kind);
  }
  if (a.is_string() || is_list_or_tuple(a)) {
    throw_error("TypeError", "can only concatenate {} (not \"{}\") to {}", a.type_name(), b.type_name(),
                a.type_name());
  }
  unsupported(BinaryOp::kAdd, a, b);
}

Value mul(const Value& a, const Value& b, const TemplateLimits& limits) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return checked_mul(a.as_integral(), b.as_integral());
    return a.as_double() * b.as_double();
  }
  if ((a.is_string() || is_list_or_tuple(a)) && b.is_integral()) return repeat(a, b.as_integral(), limits);
  if (a.is_integral() && (b.is_string() || is_list_or_tuple(b))) return repeat(b, a.as_integral(), limits);
  if ((a.is_string() || is_list_or_tuple(a)) && b.is_float()) {
    throw_error("TypeError", "can't multiply sequence by non-int of type 'float'");
  }
  unsupported(BinaryOp::kMul, a, b);
}

int sequence_compare_index(const Sequence& a, const Sequence& b, size_t& i) {
  const size_t n = std::min(a.items.size(), b.items.size());
  for (i = 0; i < n; ++i) {
    if (!equals(a.items[i], b.items[i])) return 1;
  }
  return 0;
}

}  // namespace

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    throw_error("OverflowError", "integer overflow: Python big integers are not supported");
  }
  return r;
}

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) {
    throw_error("OverflowError", "integer overflow: Python big integers are not supported");
  }
  return r;
}

Value binary_op(BinaryOp op, const Value& a, const Value& b, const TemplateLimits& limits) {
  // str.__mod__ accepts any right operand (an Undefined formats as ""), so it runs before Undefined's
  // reflected operators get a chance to raise.
  if (op == BinaryOp::kMod && a.is_string()) {
    if (a.is_markup()) return Value::markup(percent_format(a.as_str(), b, limits, /*escape_args=*/true));
    return Value(percent_format(a.as_str(), b, limits));
  }
  if (a.is_undefined()) fail_undefined(a.as_undefined());
  if (b.is_undefined()) fail_undefined(b.as_undefined());
  switch (op) {
    case BinaryOp::kAdd:
      return add(a, b, limits);
    case BinaryOp::kMul:
      return mul(a, b, limits);
    default:
      break;
  }
  if (!a.is_number() || !b.is_number()) unsupported(op, a, b);
  const bool ints = a.is_integral() && b.is_integral();
  switch (op) {
    case BinaryOp::kSub:
      if (ints) {
        int64_t r;
        if (__builtin_sub_overflow(a.as_integral(), b.as_integral(), &r)) {
          throw_error("OverflowError", "integer overflow: Python big integers are not supported");
        }
        return r;
      }
      return a.as_double() - b.as_double();
    case BinaryOp::kDiv:
      if (b.as_double() == 0.0) {
        throw_error("ZeroDivisionError", "{}", ints ? "division by zero" : "float division by zero");
      }
      return a.as_double() / b.as_double();
    case BinaryOp::kFloorDiv:
      if (ints) return int_floordiv(a.as_integral(), b.as_integral());
      if (b.as_double() == 0.0) throw_error("ZeroDivisionError", "float floor division by zero");
      return float_divmod(a.as_double(), b.as_double()).first;
    case BinaryOp::kMod:
      if (ints) return int_mod(a.as_integral(), b.as_integral());
      if (b.as_double() == 0.0) throw_error("ZeroDivisionError", "float modulo");
      return float_divmod(a.as_double(), b.as_double()).second;
    case BinaryOp::kPow: {
      if (ints) return int_pow(a.as_integral(), b.as_integral());
      const double x = a.as_double();
      const double y = b.as_double();
      if (x == 0.0 && y < 0) throw_error("ZeroDivisionError", "0.0 cannot be raised to a negative power");
      if (x < 0 && y != std::floor(y)) {
        throw_error("ValueError", "negative number cannot be raised to a fractional power (complex result)");
      }
      return std::pow(x, y);
    }
    default:
      break;
  }
  unsupported(op, a, b);
}

Value unary_op(UnaryOp op, const Value& v) {
  if (op == UnaryOp::kNot) return !truthy(v);
  if (v.is_undefined()) fail_undefined(v.as_undefined());
  if (!v.is_number()) {
    throw_error("TypeError", "bad operand type for unary {}: '{}'", op == UnaryOp::kNeg ? "-" : "+",
                v.type_name());
  }
  if (op == UnaryOp::kPos) return v.is_bool() ? Value(v.as_integral()) : v;
  if (v.is_float()) return -v.as_float();
  if (v.as_integral() == std::numeric_limits<int64_t>::min()) {
    throw_error("OverflowError", "integer overflow: Python big integers are not supported");
  }
  return -v.as_integral();
}

static bool rich_compare(CompareOp op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a.as_undefined());
  if (b.is_undefined()) fail_undefined(b.as_undefined());
  auto apply = [op](auto x, auto y) {
    switch (op) {
      case CompareOp::kLt:
        return x < y;
      case CompareOp::kLe:
        return x <= y;
      case CompareOp::kGt:
        return x > y;
      default:
        return x >= y;
    }
  };
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return apply(a.as_integral(), b.as_integral());
    return apply(a.as_double(), b.as_double());
  }
  if (a.is_string() && b.is_string()) return apply(a.as_str(), b.as_str());  // UTF-8 order = code point order
  if (is_list_or_tuple(a) && is_list_or_tuple(b) && a.seq().kind == b.seq().kind) {
    // Python sequences: the first differing element decides, else the lengths.
    size_t i = 0;
    if (sequence_compare_index(a.seq(), b.seq(), i))
      return rich_compare(op, a.seq().items[i], b.seq().items[i]);
    return apply(a.seq().items.size(), b.seq().items.size());
  }
  const char* symbol = op == CompareOp::kLt   ? "<"
                       : op == CompareOp::kLe ? "<="
                       : op == CompareOp::kGt ? ">"
                                              : ">=";
  throw_error("TypeError", "'{}' not supported between instances of '{}' and '{}'", symbol, a.type_name(),
              b.type_name());
}

bool less_than(const Value& a, const Value& b) {
  return rich_compare(CompareOp::kLt, a, b);
}

bool compare(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq:
      return equals(a, b);
    case CompareOp::kNe:
      return !equals(a, b);
    case CompareOp::kIn:
      return contains(b, a);
    case CompareOp::kNotIn:
      return !contains(b, a);
    default:
      return rich_compare(op, a, b);
  }
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined:
      return false;  // jinja2.Undefined iterates as empty
    case Value::Kind::kString:
      if (!item.is_string()) {
        throw_error("TypeError", "'in <string>' requires string as left operand, not {}", item.type_name());
      }
      return container.as_str().find(item.as_str()) != std::string::npos;
    case Value::Kind::kSequence: {
      const Sequence& s = container.seq();
      if (s.kind == SeqKind::kIterator) {
        // `in` consumes an iterator up to and including the match.
        const std::vector<Value>& items = s.iterator_items();
        while (s.cursor < items.size()) {
          if (equals(items[s.cursor++], item)) return true;
        }
        return false;
      }
      for (const Value& x : s.items) {
        if (equals(x, item)) return true;
      }
      return false;
    }
    case Value::Kind::kDict:
      return container.dict().find(item) != nullptr;
    default:
      throw_error("TypeError", "argument of type '{}' is not iterable", container.type_name());
  }
}

int64_t py_len(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return static_cast<int64_t>(unicode::length(v.as_str()));
    case Value::Kind::kSequence:
      if (v.seq().kind == SeqKind::kIterator) break;
      return static_cast<int64_t>(v.seq().items.size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(v.dict().size());
    default:
      break;
  }
  throw_error("TypeError", "object of type '{}' has no len()", v.type_name());
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kString: {
      std::vector<Value> out;
      for (std::string& c : py::chars(v.as_str())) out.emplace_back(std::move(c));
      return out;
    }
    case Value::Kind::kSequence: {
      const Sequence& s = v.seq();
      if (s.kind == SeqKind::kIterator) {
        const std::vector<Value>& items = s.iterator_items();
        std::vector<Value> rest(items.begin() + static_cast<std::ptrdiff_t>(s.cursor), items.end());
        s.cursor = items.size();
        return rest;
      }
      return s.items;
    }
    case Value::Kind::kDict: {
      std::vector<Value> out;
      out.reserve(v.dict().size());
      for (const auto& [k, value] : v.dict().entries()) out.push_back(k);
      return out;
    }
    default:
      throw_error("TypeError", "'{}' object is not iterable", v.type_name());
  }
}

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

}  // namespace tandem::tmpl
