#include "template/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "core/utf8.h"
#include "template/loop_state.h"
#include "template/render_error.h"
#include "template/unicode.h"

namespace tandem::tmpl {
namespace {

// Printing nests through containers; a Namespace can contain itself, which Python prints as "{...}" and we
// refuse rather than overflow the stack.
constexpr int kMaxPrintDepth = 200;

// held_bytes() of a container counts this much per item on top of what the item holds (a Value's size).
constexpr size_t kItemBytes = 16;

size_t add_saturating(size_t a, size_t b) {
  return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

void append_repr(std::string& out, const Value& v, int depth);

void append_hex(std::string& out, char prefix, uint32_t value, int digits) {
  out.push_back('\\');
  out.push_back(prefix);
  for (int i = digits - 1; i >= 0; --i) out.push_back("0123456789abcdef"[(value >> (4 * i)) & 0xF]);
}

void append_items(std::string& out, const std::vector<Value>& items, int depth) {
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    append_repr(out, items[i], depth);
  }
}

void append_dict(std::string& out, const Dict& d, int depth) {
  out.push_back('{');
  bool first = true;
  for (const auto& [k, v] : d.entries()) {
    if (!first) out += ", ";
    first = false;
    append_repr(out, k, depth);
    out += ": ";
    append_repr(out, v, depth);
  }
  out.push_back('}');
}

void append_sequence(std::string& out, const Sequence& s, int depth) {
  switch (s.kind) {
    case SeqKind::kList:
      out.push_back('[');
      append_items(out, s.items, depth);
      out.push_back(']');
      return;
    case SeqKind::kTuple:
      out.push_back('(');
      append_items(out, s.items, depth);
      if (s.items.size() == 1) out.push_back(',');
      out.push_back(')');
      return;
    case SeqKind::kDictKeys:
      out += "dict_keys([";
      append_items(out, s.items, depth);
      out += "])";
      return;
    case SeqKind::kDictValues:
      out += "dict_values([";
      append_items(out, s.items, depth);
      out += "])";
      return;
    case SeqKind::kDictItems:
      out += "dict_items([";
      append_items(out, s.items, depth);
      out += "])";
      return;
    case SeqKind::kRange:
      out += fmt::format("range({}, {}", s.range_start, s.range_stop);
      if (s.range_step != 1) out += fmt::format(", {}", s.range_step);
      out.push_back(')');
      return;
    case SeqKind::kIterator:
      // CPython prints the object's address; ours has the same shape (so |length and |wordcount agree)
      // but naturally not the same digits.
      if (s.generator_name) {
        out += fmt::format("<generator object {} at {}>", s.generator_name, static_cast<const void*>(&s));
      } else {
        out += fmt::format("<{} object at {}>", s.iterator_type, static_cast<const void*>(&s));
      }
      return;
  }
}

void append_str(std::string& out, const Value& v, int depth) {
  if (depth > kMaxPrintDepth)
    throw_error("RecursionError", "maximum recursion depth exceeded while printing");
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return;
    case Value::Kind::kNone:
      out += "None";
      return;
    case Value::Kind::kBool:
      out += v.as_bool() ? "True" : "False";
      return;
    case Value::Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::kFloat:
      out += py_float_repr(v.as_float());
      return;
    case Value::Kind::kString:
      out += v.as_str();
      return;
    case Value::Kind::kSequence:
      append_sequence(out, v.seq(), depth + 1);
      return;
    case Value::Kind::kDict:
      append_dict(out, v.dict(), depth + 1);
      return;
    case Value::Kind::kNamespace:
      out += "<Namespace ";
      append_dict(out, v.ns().attrs, depth + 1);
      out += ">";
      return;
    case Value::Kind::kCallable: {
      const Callable& c = v.callable();
      if (c.kind == Callable::Kind::kMacro) {
        out += "<Macro " + py_str_repr(c.name) + ">";
      } else if (c.kind == Callable::Kind::kMethod) {
        out += "<built-in method " + c.name + ">";
      } else {
        out += "<function " + c.name + ">";
      }
      return;
    }
    case Value::Kind::kLoop: {
      const LoopState& l = v.loop();
      out += fmt::format("<LoopContext {}/{}>", l.index0 + 1, l.items.size());
      return;
    }
  }
}

void append_repr(std::string& out, const Value& v, int depth) {
  if (v.is_string()) {
    if (v.is_markup()) {
      out += "Markup(" + py_str_repr(v.as_str()) + ")";
    } else {
      out += py_str_repr(v.as_str());
    }
  } else if (v.is_undefined()) {
    out += "Undefined";
  } else {
    append_str(out, v, depth);
  }
}

bool sequence_equals(const Sequence& a, const Sequence& b) {
  const bool a_set = a.kind == SeqKind::kDictKeys || a.kind == SeqKind::kDictItems;
  const bool b_set = b.kind == SeqKind::kDictKeys || b.kind == SeqKind::kDictItems;
  if (a_set || b_set) {
    // dict_keys / dict_items compare as sets, and only with each other.
    if (!(a_set && b_set) || a.items.size() != b.items.size()) return false;
    for (const Value& x : a.items) {
      bool found = false;
      for (const Value& y : b.items) {
        if (equals(x, y)) {
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
    return true;
  }
  if (a.kind == SeqKind::kDictValues || b.kind == SeqKind::kDictValues || a.kind == SeqKind::kIterator ||
      b.kind == SeqKind::kIterator) {
    return &a == &b;
  }
  if (a.kind != b.kind) return false;
  if (a.items.size() != b.items.size()) return false;
  for (size_t i = 0; i < a.items.size(); ++i) {
    if (!equals(a.items[i], b.items[i])) return false;
  }
  return true;
}

}  // namespace

Value Value::list(std::vector<Value> items) {
  return sequence(std::move(items), SeqKind::kList);
}

Value Value::tuple(std::vector<Value> items) {
  return sequence(std::move(items), SeqKind::kTuple);
}

Value Value::iterator(std::vector<Value> items, const char* type_name) {
  auto s = std::make_shared<Sequence>();
  s->produced = std::move(items);
  s->kind = SeqKind::kIterator;
  s->iterator_type = type_name;
  return Value(std::shared_ptr<const Sequence>(std::move(s)));
}

Value Value::generator(const char* name, std::function<std::vector<Value>()> produce) {
  auto s = std::make_shared<Sequence>();
  s->generator_name = name;
  s->producer = std::move(produce);
  s->kind = SeqKind::kIterator;
  s->iterator_type = "generator";
  return Value(std::shared_ptr<const Sequence>(std::move(s)));
}

Value Value::sequence(std::vector<Value> items, SeqKind kind) {
  auto s = std::make_shared<Sequence>();
  for (const Value& item : items) {
    s->depth = std::max(s->depth, 1 + nesting(item));
    s->bytes = add_saturating(s->bytes, add_saturating(held_bytes(item), kItemBytes));
  }
  s->items = std::move(items);
  s->kind = kind;
  return Value(std::shared_ptr<const Sequence>(std::move(s)));
}

size_t held_bytes(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kString:
      return v.as_str().size();
    case Value::Kind::kSequence:
      return v.seq().bytes;
    case Value::Kind::kDict:
      return v.dict().bytes();
    case Value::Kind::kNamespace:
      return v.ns().attrs.bytes();
    default:
      return 0;
  }
}

int nesting(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kSequence:
      return v.seq().depth;
    case Value::Kind::kDict:
      return v.dict().depth();
    case Value::Kind::kNamespace:
      return v.ns().attrs.depth();
    default:
      return 0;
  }
}

const void* Value::identity() const {
  switch (kind()) {
    case Kind::kSequence:
      return std::get<std::shared_ptr<const Sequence>>(v_).get();
    case Kind::kDict:
      return std::get<std::shared_ptr<const Dict>>(v_).get();
    case Kind::kNamespace:
      return std::get<std::shared_ptr<Namespace>>(v_).get();
    case Kind::kCallable:
      return std::get<std::shared_ptr<const Callable>>(v_).get();
    case Kind::kLoop:
      return std::get<std::shared_ptr<LoopState>>(v_).get();
    default:
      return nullptr;
  }
}

std::string Value::type_name() const {
  switch (kind()) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return is_markup() ? "Markup" : "str";
    case Kind::kSequence:
      switch (seq().kind) {
        case SeqKind::kList:
          return "list";
        case SeqKind::kTuple:
          return "tuple";
        case SeqKind::kDictKeys:
          return "dict_keys";
        case SeqKind::kDictValues:
          return "dict_values";
        case SeqKind::kDictItems:
          return "dict_items";
        case SeqKind::kRange:
          return "range";
        case SeqKind::kIterator:
          return seq().iterator_type;
      }
      return "list";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kCallable:
      switch (callable().kind) {
        case Callable::Kind::kMacro:
          return "Macro";
        case Callable::Kind::kMethod:
          return "builtin_function_or_method";
        case Callable::Kind::kFunction:
          return "function";
      }
      return "function";
    case Kind::kLoop:
      return "LoopContext";
  }
  return "object";
}

std::string hash_key(const Value& key) {
  switch (key.kind()) {
    case Value::Kind::kNone:
      return "N";
    case Value::Kind::kUndefined:
      return "U";
    case Value::Kind::kBool:
    case Value::Kind::kInt:
      return "i" + std::to_string(key.as_integral());
    case Value::Kind::kFloat: {
      const double d = key.as_float();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) {
        return "i" + std::to_string(static_cast<int64_t>(d));
      }
      return "f" + py_float_repr(d);
    }
    case Value::Kind::kString:
      return "s" + key.as_str();
    case Value::Kind::kSequence:
      if (key.seq().kind == SeqKind::kTuple) {
        std::string out = "t";
        for (const Value& item : key.seq().items) {
          const std::string part = hash_key(item);
          out += std::to_string(part.size()) + ":" + part;
        }
        return out;
      }
      if (key.seq().kind == SeqKind::kRange) return "r" + to_str(key);
      if (key.seq().kind == SeqKind::kIterator) return fmt::format("p{}", key.identity());
      throw_error("TypeError", "unhashable type: '{}'", key.type_name());
    case Value::Kind::kDict:
      throw_error("TypeError", "unhashable type: 'dict'");
    default:
      return fmt::format("p{}", key.identity());
  }
}

const Value* Dict::find(const Value& key) const {
  auto it = index_.find(hash_key(key));
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

void Dict::set(Value key, Value value) {
  // nesting() of a namespace that holds this dict reads depth_, so a self-reference ({% set ns.me = ns %})
  // only reads the old value: no recursion.
  depth_ = std::max({depth_, 1 + nesting(key), 1 + nesting(value)});
  const size_t value_bytes = held_bytes(value);
  auto [it, inserted] = index_.emplace(hash_key(key), entries_.size());
  if (inserted) {
    bytes_ = add_saturating(bytes_, add_saturating(held_bytes(key), add_saturating(value_bytes, kItemBytes)));
    entries_.emplace_back(std::move(key), std::move(value));
  } else {
    const size_t old_bytes = held_bytes(entries_[it->second].second);
    bytes_ = add_saturating(bytes_ - std::min(bytes_, old_bytes), value_bytes);
    entries_[it->second].second = std::move(value);
  }
}

bool Dict::erase(const Value& key) {
  auto it = index_.find(hash_key(key));
  if (it == index_.end()) return false;
  const size_t pos = it->second;
  index_.erase(it);
  entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(pos));
  for (auto& [k, p] : index_) {
    if (p > pos) --p;
  }
  return true;
}

bool truthy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return v.as_bool();
    case Value::Kind::kInt:
      return v.as_int() != 0;
    case Value::Kind::kFloat:
      return v.as_float() != 0.0;
    case Value::Kind::kString:
      return !v.as_str().empty();
    case Value::Kind::kSequence:
      return v.seq().kind == SeqKind::kIterator || !v.seq().items.empty();
    case Value::Kind::kDict:
      return !v.dict().empty();
    default:
      return true;
  }
}

std::string to_str(const Value& v) {
  if (v.is_string()) return v.as_str();
  std::string out;
  append_str(out, v, 0);
  return out;
}

std::string to_repr(const Value& v) {
  std::string out;
  append_repr(out, v, 0);
  return out;
}

bool equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_integral() == b.as_integral();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.as_str() == b.as_str();
    case Value::Kind::kSequence:
      return sequence_equals(a.seq(), b.seq());
    case Value::Kind::kDict: {
      const Dict& x = a.dict();
      const Dict& y = b.dict();
      if (x.size() != y.size()) return false;
      for (const auto& [k, v] : x.entries()) {
        const Value* other = y.find(k);
        if (other == nullptr || !equals(v, *other)) return false;
      }
      return true;
    }
    default:
      return a.identity() == b.identity();
  }
}

Value from_json(const nlohmann::ordered_json& j) {
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return None{};
    case nlohmann::ordered_json::value_t::boolean:
      return j.get<bool>();
    case nlohmann::ordered_json::value_t::number_integer:
      return j.get<int64_t>();
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        throw_error("OverflowError", "integer {} in the template context exceeds the 64-bit range", u);
      }
      return static_cast<int64_t>(u);
    }
    case nlohmann::ordered_json::value_t::number_float:
      return j.get<double>();
    case nlohmann::ordered_json::value_t::string:
      return j.get<std::string>();
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(from_json(item));
      return Value::list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (const auto& [k, item] : j.items()) d->set(Value(k), from_json(item));
      return Value(std::shared_ptr<const Dict>(std::move(d)));
    }
    default:
      throw_error("TypeError", "unsupported JSON value of type '{}' in the template context", j.type_name());
  }
}

void fail_undefined(const Undefined& u) {
  throw RenderError(u.unsafe ? "SecurityError" : "UndefinedError", u.hint);
}

std::string py_str_repr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back(quote);
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t cp = utf8::decode(s, pos);
    if (cp == static_cast<char32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp < 0x20 || cp == 0x7F) {
      append_hex(out, 'x', cp, 2);
    } else if (cp < 0x7F) {
      out.push_back(static_cast<char>(cp));
    } else if (unicode::is_printable(cp)) {
      utf8::append(out, cp);
    } else if (cp <= 0xFF) {
      append_hex(out, 'x', cp, 2);
    } else if (cp <= 0xFFFF) {
      append_hex(out, 'u', cp, 4);
    } else {
      append_hex(out, 'U', cp, 8);
    }
  }
  out.push_back(quote);
  return out;
}

std::string py_float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  // Shortest round-trip digits in scientific form, e.g. "-1.2345e+15", then laid out as CPython's repr
  // does: fixed notation when the decimal exponent is in (-4, 16], scientific otherwise.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  const int exp10 = std::stoi(std::string(sci.substr(e_pos + 1)));
  const int decpt = exp10 + 1;  // value = 0.DIGITS * 10^decpt
  const int n = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    } else if (decpt >= n) {
      out += digits + std::string(static_cast<size_t>(decpt - n), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
    }
    return out;
  }
  out.push_back(digits[0]);
  if (n > 1) out += "." + digits.substr(1);
  const int e = decpt - 1;
  out += fmt::format("e{}{:02d}", e < 0 ? '-' : '+', e < 0 ? -e : e);
  return out;
}

}  // namespace tandem::tmpl
