#include "template/py_format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "core/utf8.h"
#include "template/access.h"
#include "template/py_ops.h"
#include "template/render_error.h"
#include "template/unicode.h"

namespace tandem::tmpl {
namespace {

std::string ascii_repr(const Value& v) {
  // ascii(): repr with every non-ASCII character escaped.
  const std::string r = to_repr(v);
  std::string out;
  size_t pos = 0;
  while (pos < r.size()) {
    const char32_t cp = utf8::decode(r, pos);
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp <= 0xFF) {
      out += fmt::format("\\x{:02x}", static_cast<uint32_t>(cp));
    } else if (cp <= 0xFFFF) {
      out += fmt::format("\\u{:04x}", static_cast<uint32_t>(cp));
    } else {
      out += fmt::format("\\U{:08x}", static_cast<uint32_t>(cp));
    }
  }
  return out;
}

std::string truncate_code_points(const std::string& s, int64_t n) {
  if (n < 0) return s;
  size_t pos = 0;
  for (int64_t i = 0; i < n && pos < s.size(); ++i) utf8::decode(s, pos);
  return s.substr(0, pos);
}

std::string c_format_double(const std::string& spec, double d) {
  char buf[512];
  const int n = std::snprintf(buf, sizeof(buf), spec.c_str(), d);
  if (n < 0) throw_error("ValueError", "cannot format {}", d);
  if (static_cast<size_t>(n) < sizeof(buf)) return std::string(buf, static_cast<size_t>(n));
  std::string big(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(big.data(), big.size(), spec.c_str(), d);
  big.resize(static_cast<size_t>(n));
  return big;
}

std::string to_base(uint64_t v, int base, bool upper) {
  if (v == 0) return "0";
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  while (v) {
    out.push_back(digits[v % static_cast<uint64_t>(base)]);
    v /= static_cast<uint64_t>(base);
  }
  return std::string(out.rbegin(), out.rend());
}

uint64_t magnitude(int64_t v) {
  return v < 0 ? static_cast<uint64_t>(-(v + 1)) + 1 : static_cast<uint64_t>(v);
}

std::string insert_grouping(const std::string& digits, char sep, size_t group) {
  std::string out;
  const size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % group == 0) out.push_back(sep);
    out.push_back(digits[i]);
  }
  return out;
}

// value * 10 + digit for a width or precision written in the template, saturating at INT64_MAX (which every
// size check then refuses) instead of overflowing; -1 ("none yet") starts at 0.
int64_t append_digit(int64_t value, char digit) {
  const int64_t v = value < 0 ? 0 : value;
  if (v > (std::numeric_limits<int64_t>::max() - 9) / 10) return std::numeric_limits<int64_t>::max();
  return v * 10 + (digit - '0');
}

// ---------------------------------------------------------------- printf-style

struct PercentSpec {
  bool left = false, plus = false, space = false, alt = false, zero = false;
  int64_t width = -1;
  int64_t precision = -1;
  char conv = 0;
};

std::string pad_percent(const PercentSpec& s, const std::string& sign_prefix, const std::string& body,
                        bool numeric) {
  const auto len = static_cast<int64_t>(unicode::length(sign_prefix) + unicode::length(body));
  if (s.width <= len) return sign_prefix + body;
  const auto fill = static_cast<size_t>(s.width - len);
  if (s.left) return sign_prefix + body + std::string(fill, ' ');
  if (s.zero && numeric) return sign_prefix + std::string(fill, '0') + body;
  return std::string(fill, ' ') + sign_prefix + body;
}

std::string percent_one(const PercentSpec& s, const Value& arg, bool escape) {
  switch (s.conv) {
    case 's':
    case 'r':
    case 'a': {
      std::string text = s.conv == 's' ? to_str(arg) : s.conv == 'r' ? to_repr(arg) : ascii_repr(arg);
      if (escape && !arg.is_markup()) text = html_escape(text);
      return pad_percent(s, "", truncate_code_points(text, s.precision), false);
    }
    case 'c': {
      std::string ch;
      if (arg.is_integral()) {
        const int64_t cp = arg.as_integral();
        if (cp < 0 || cp > 0x10FFFF) throw_error("OverflowError", "%c arg not in range(0x110000)");
        utf8::append(ch, static_cast<char32_t>(cp));
      } else if (arg.is_string() && unicode::length(arg.as_str()) == 1) {
        ch = arg.as_str();
      } else {
        throw_error("TypeError", "%c requires int or char");
      }
      return pad_percent(s, "", ch, false);
    }
    case 'd':
    case 'i':
    case 'u':
    case 'o':
    case 'x':
    case 'X': {
      int64_t v;
      if (arg.is_integral()) {
        v = arg.as_integral();
      } else if (arg.is_float() && (s.conv == 'd' || s.conv == 'i' || s.conv == 'u')) {
        const double d = arg.as_float();
        if (!std::isfinite(d))
          throw_error("OverflowError", "cannot convert float infinity or NaN to integer");
        v = static_cast<int64_t>(std::trunc(d));
      } else if (s.conv == 'd' || s.conv == 'i' || s.conv == 'u') {
        throw_error("TypeError", "%{} format: a real number is required, not {}", s.conv, arg.type_name());
      } else {
        throw_error("TypeError", "%{} format: an integer is required, not {}", s.conv, arg.type_name());
      }
      const int base = (s.conv == 'o') ? 8 : (s.conv == 'x' || s.conv == 'X') ? 16 : 10;
      std::string digits = to_base(magnitude(v), base, s.conv == 'X');
      if (s.precision > static_cast<int64_t>(digits.size())) {
        digits.insert(0, static_cast<size_t>(s.precision) - digits.size(), '0');
      }
      std::string prefix = v < 0 ? "-" : s.plus ? "+" : s.space ? " " : "";
      if (s.alt && base != 10) prefix += s.conv == 'o' ? "0o" : s.conv == 'x' ? "0x" : "0X";
      return pad_percent(s, prefix, digits, true);
    }
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G': {
      if (!arg.is_number()) throw_error("TypeError", "must be real number, not {}", arg.type_name());
      std::string spec = "%";
      if (s.left) spec += '-';
      if (s.plus) spec += '+';
      if (s.space) spec += ' ';
      if (s.alt) spec += '#';
      if (s.zero) spec += '0';
      if (s.width >= 0) spec += std::to_string(s.width);
      spec += "." + std::to_string(s.precision < 0 ? 6 : s.precision);
      spec += s.conv;
      return c_format_double(spec, arg.as_double());
    }
    default:
      throw_error("ValueError", "unsupported format character '{}'", s.conv);
  }
}

// ---------------------------------------------------------------- format-spec mini-language

struct FormatSpec {
  std::string fill = " ";
  char align = 0;
  char sign = '-';
  bool alt = false;
  bool zero = false;
  int64_t width = -1;
  char grouping = 0;
  int64_t precision = -1;
  char type = 0;
};

FormatSpec parse_format_spec(const std::string& spec) {
  FormatSpec f;
  size_t i = 0;
  auto is_align = [](char c) { return c == '<' || c == '>' || c == '=' || c == '^'; };
  // [[fill]align]: the fill may be any (multi-byte) character.
  size_t after_first = 0;
  if (!spec.empty()) {
    size_t p = 0;
    utf8::decode(spec, p);
    after_first = p;
  }
  if (after_first < spec.size() && is_align(spec[after_first])) {
    f.fill = spec.substr(0, after_first);
    f.align = spec[after_first];
    i = after_first + 1;
  } else if (!spec.empty() && is_align(spec[0])) {
    f.align = spec[0];
    i = 1;
  }
  if (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) f.sign = spec[i++];
  if (i < spec.size() && spec[i] == 'z') ++i;
  if (i < spec.size() && spec[i] == '#') {
    f.alt = true;
    ++i;
  }
  if (i < spec.size() && spec[i] == '0') {
    f.zero = true;
    ++i;
  }
  auto read_int = [&]() -> int64_t {
    int64_t v = -1;
    while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') v = append_digit(v, spec[i++]);
    return v;
  };
  f.width = read_int();
  if (i < spec.size() && (spec[i] == ',' || spec[i] == '_')) f.grouping = spec[i++];
  if (i < spec.size() && spec[i] == '.') {
    ++i;
    f.precision = read_int();
    if (f.precision < 0) throw_error("ValueError", "Format specifier missing precision");
  }
  if (i < spec.size()) f.type = spec[i++];
  if (i != spec.size()) throw_error("ValueError", "Invalid format specifier '{}'", spec);
  return f;
}

std::string apply_padding(const FormatSpec& f, const std::string& prefix, const std::string& body,
                          char default_align) {
  char align = f.align ? f.align : default_align;
  std::string fill = f.fill;
  if (f.zero && !f.align) {
    fill = "0";
    align = default_align == '>' ? '=' : align;
  }
  const auto len = static_cast<int64_t>(unicode::length(prefix) + unicode::length(body));
  if (f.width <= len) return prefix + body;
  const int64_t pad = f.width - len;
  auto repeat = [&](int64_t n) {
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += fill;
    return out;
  };
  switch (align) {
    case '<':
      return prefix + body + repeat(pad);
    case '^':
      return repeat(pad / 2) + prefix + body + repeat(pad - pad / 2);
    case '=':
      return prefix + repeat(pad) + body;
    default:
      return repeat(pad) + prefix + body;
  }
}

std::string sign_of(const FormatSpec& f, bool negative) {
  if (negative) return "-";
  if (f.sign == '+') return "+";
  if (f.sign == ' ') return " ";
  return "";
}

std::string format_float(const FormatSpec& f, double d) {
  const bool negative = std::signbit(d) && !std::isnan(d);
  const double mag = std::fabs(d);
  std::string body;
  char type = f.type;
  if (type == 0 && f.precision < 0) {
    body = py_float_repr(mag);
  } else if (type == '%') {
    body = c_format_double(fmt::format("%{}.{}f", f.alt ? "#" : "", f.precision < 0 ? 6 : f.precision),
                           mag * 100) +
           "%";
  } else if (type == 0) {
    body = c_format_double(fmt::format("%{}.{}g", f.alt ? "#" : "", f.precision == 0 ? 1 : f.precision), mag);
    if (body.find_first_of(".en") == std::string::npos) body += ".0";
  } else if (type == 'e' || type == 'E' || type == 'f' || type == 'F' || type == 'g' || type == 'G' ||
             type == 'n') {
    if (type == 'n') type = 'g';
    int64_t precision = f.precision < 0 ? 6 : f.precision;
    if ((type == 'g' || type == 'G') && precision == 0) precision = 1;
    body = c_format_double(fmt::format("%{}.{}{}", f.alt ? "#" : "", precision, type), mag);
  } else {
    throw_error("ValueError", "Unknown format code '{}' for object of type 'float'", type);
  }
  if (f.grouping) {
    const size_t end = body.find_first_not_of("0123456789");
    const std::string int_part = body.substr(0, end);
    body = insert_grouping(int_part, f.grouping, 3) + (end == std::string::npos ? "" : body.substr(end));
  }
  return apply_padding(f, sign_of(f, negative), body, '>');
}

std::string format_int(const FormatSpec& f, int64_t v) {
  std::string body;
  std::string prefix;
  switch (f.type) {
    case 0:
    case 'd':
    case 'n':
      body = to_base(magnitude(v), 10, false);
      break;
    case 'b':
      body = to_base(magnitude(v), 2, false);
      if (f.alt) prefix = "0b";
      break;
    case 'o':
      body = to_base(magnitude(v), 8, false);
      if (f.alt) prefix = "0o";
      break;
    case 'x':
    case 'X':
      body = to_base(magnitude(v), 16, f.type == 'X');
      if (f.alt) prefix = f.type == 'x' ? "0x" : "0X";
      break;
    case 'c': {
      if (v < 0 || v > 0x10FFFF) throw_error("OverflowError", "%c arg not in range(0x110000)");
      utf8::append(body, static_cast<char32_t>(v));
      return apply_padding(f, "", body, '>');
    }
    case 'e':
    case 'E':
    case 'f':
    case 'F':
    case 'g':
    case 'G':
    case '%':
      return format_float(f, static_cast<double>(v));
    default:
      throw_error("ValueError", "Unknown format code '{}' for object of type 'int'", f.type);
  }
  if (f.precision >= 0) throw_error("ValueError", "Precision not allowed in integer format specifier");
  if (f.grouping)
    body = insert_grouping(body, f.grouping, (f.type == 0 || f.type == 'd' || f.type == 'n') ? 3 : 4);
  return apply_padding(f, sign_of(f, v < 0) + prefix, body, '>');
}

}  // namespace

std::string format_value(const Value& v, const std::string& spec, const TemplateLimits& limits) {
  if (spec.empty()) return to_str(v);
  const FormatSpec f = parse_format_spec(spec);
  check_built_size(f.width, f.fill.size(), limits, "a format width");
  check_built_size(f.precision, 1, limits, "a format precision");
  if (v.is_string()) {
    if (f.type != 0 && f.type != 's')
      throw_error("ValueError", "Unknown format code '{}' for object of type 'str'", f.type);
    if (f.align == '=') throw_error("ValueError", "'=' alignment not allowed in string format specifier");
    if (f.sign != '-') throw_error("ValueError", "Sign not allowed in string format specifier");
    return apply_padding(f, "", truncate_code_points(v.as_str(), f.precision), '<');
  }
  if (v.is_integral()) return format_int(f, v.as_integral());
  if (v.is_float()) return format_float(f, v.as_float());
  if (v.is_undefined()) fail_undefined(v.as_undefined());
  throw_error("TypeError", "unsupported format string passed to {}.__format__", v.type_name());
}

std::string percent_format(const std::string& fmt, const Value& args, const TemplateLimits& limits,
                           bool escape_args) {
  std::vector<Value> positional;
  bool tuple_args = false;
  if (args.is_sequence() && args.seq().kind == SeqKind::kTuple) {
    positional = args.seq().items;
    tuple_args = true;
  }
  // CPython treats any argument with __getitem__ (dict, list, range, jinja2.Undefined; not tuple or str) as a
  // potential mapping, which silences "not all arguments converted".
  const bool mapping =
      args.is_dict() || args.is_undefined() ||
      (args.is_sequence() && (args.seq().kind == SeqKind::kList || args.seq().kind == SeqKind::kRange));
  size_t next_arg = 0;
  bool single_used = false;
  auto next_value = [&]() -> Value {
    if (tuple_args) {
      if (next_arg >= positional.size()) throw_error("TypeError", "not enough arguments for format string");
      return positional[next_arg++];
    }
    if (single_used) throw_error("TypeError", "not enough arguments for format string");
    single_used = true;
    return args;
  };
  std::string out;
  size_t i = 0;
  while (i < fmt.size()) {
    const char c = fmt[i];
    if (c != '%') {
      out.push_back(c);
      ++i;
      continue;
    }
    ++i;
    if (i >= fmt.size()) throw_error("ValueError", "incomplete format");
    std::optional<Value> keyed;
    if (fmt[i] == '(') {
      if (!args.is_dict()) throw_error("TypeError", "format requires a mapping");
      int depth = 1;
      const size_t key_start = ++i;
      while (i < fmt.size() && depth > 0) {
        if (fmt[i] == '(') ++depth;
        if (fmt[i] == ')') --depth;
        ++i;
      }
      if (depth > 0) throw_error("ValueError", "incomplete format key");
      const std::string key = fmt.substr(key_start, i - 1 - key_start);
      const Value* v = args.dict().find(Value(key));
      if (v == nullptr) throw_error("KeyError", "{}", py_str_repr(key));
      keyed = *v;
    }
    PercentSpec s;
    for (; i < fmt.size(); ++i) {
      const char f = fmt[i];
      if (f == '-') {
        s.left = true;
      } else if (f == '+') {
        s.plus = true;
      } else if (f == ' ') {
        s.space = true;
      } else if (f == '#') {
        s.alt = true;
      } else if (f == '0') {
        s.zero = true;
      } else {
        break;
      }
    }
    auto read_number = [&](int64_t& target) {
      if (i < fmt.size() && fmt[i] == '*') {
        const Value w = next_value();
        if (!w.is_integral()) throw_error("TypeError", "* wants int");
        target = w.as_integral();
        ++i;
        return;
      }
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') target = append_digit(target, fmt[i++]);
    };
    read_number(s.width);
    if (s.width < -1) {
      s.left = true;
      s.width =
          s.width == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -s.width;
    }
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      s.precision = 0;
      read_number(s.precision);
    }
    check_built_size(s.width, 1, limits, "a %-format width");
    check_built_size(s.precision, 1, limits, "a %-format precision");
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) throw_error("ValueError", "incomplete format");
    s.conv = fmt[i++];
    if (s.conv == '%') {
      out.push_back('%');
      continue;
    }
    if (std::string_view("sradiuoxXeEfFgGc").find(s.conv) == std::string_view::npos) {
      throw_error("ValueError", "unsupported format character '{}' (0x{:x}) at index {}", s.conv,
                  static_cast<unsigned>(static_cast<unsigned char>(s.conv)), i - 1);
    }
    out += percent_one(s, keyed ? *keyed : next_value(), escape_args);
    check_built_size(static_cast<int64_t>(out.size()), 1, limits, "the %-formatted string");
  }
  const bool unused = tuple_args ? next_arg < positional.size() : !single_used;
  if (unused && !mapping) throw_error("TypeError", "not all arguments converted during string formatting");
  return out;
}

std::string str_format(const std::string& fmt, const CallArgs& args, const TemplateLimits& limits) {
  std::string out;
  size_t i = 0;
  int auto_index = 0;
  bool manual = false;
  bool automatic = false;
  while (i < fmt.size()) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        i += 2;
        continue;
      }
      throw_error("ValueError", "Single '}}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      i += 2;
      continue;
    }
    // Replacement field up to the matching '}'.
    size_t j = i + 1;
    int depth = 1;
    while (j < fmt.size()) {
      if (fmt[j] == '{') ++depth;
      if (fmt[j] == '}' && --depth == 0) break;
      ++j;
    }
    if (j >= fmt.size()) throw_error("ValueError", "expected '}}' before end of string");
    const std::string field = fmt.substr(i + 1, j - i - 1);
    i = j + 1;
    if (field.find('{') != std::string::npos) {
      throw_error("ValueError", "nested replacement fields in a format spec are not supported");
    }
    // field_name [!conv] [:spec]
    size_t name_end = 0;
    while (name_end < field.size() && field[name_end] != '!' && field[name_end] != ':') {
      if (field[name_end] == '[') {
        while (name_end < field.size() && field[name_end] != ']') ++name_end;
      }
      if (name_end < field.size()) ++name_end;
    }
    const std::string name = field.substr(0, name_end);
    char conversion = 0;
    std::string spec;
    size_t k = name_end;
    if (k < field.size() && field[k] == '!') {
      if (k + 1 >= field.size())
        throw_error("ValueError", "end of string while looking for conversion specifier");
      conversion = field[k + 1];
      k += 2;
      if (k < field.size() && field[k] != ':')
        throw_error("ValueError", "expected ':' after conversion specifier");
    }
    if (k < field.size() && field[k] == ':') spec = field.substr(k + 1);
    // First part of the name: index or keyword.
    size_t first_end = 0;
    while (first_end < name.size() && name[first_end] != '.' && name[first_end] != '[') ++first_end;
    const std::string first = name.substr(0, first_end);
    Value obj;
    if (first.empty()) {
      if (manual)
        throw_error("ValueError",
                    "cannot switch from manual field specification to automatic field numbering");
      automatic = true;
      const auto idx = static_cast<size_t>(auto_index++);
      if (idx >= args.args.size()) {
        throw_error("IndexError", "tuple index out of range");
      }
      obj = args.args[idx];
    } else if (std::all_of(first.begin(), first.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      if (automatic)
        throw_error("ValueError",
                    "cannot switch from automatic field numbering to manual field specification");
      manual = true;
      if (first.size() > 18)
        throw_error("IndexError", "Replacement index {} out of range for positional args tuple", first);
      const auto idx = static_cast<size_t>(std::stoll(first));
      if (idx >= args.args.size()) {
        throw_error("IndexError", "tuple index out of range");
      }
      obj = args.args[idx];
    } else {
      bool found = false;
      for (const auto& [key, value] : args.kwargs) {
        if (key == first) {
          obj = value;
          found = true;
        }
      }
      if (!found) throw_error("KeyError", "{}", py_str_repr(first));
    }
    // .attr and [key] lookups, through the sandbox like jinja2's SandboxedFormatter.
    size_t p = first_end;
    while (p < name.size()) {
      if (name[p] == '.') {
        size_t q = p + 1;
        while (q < name.size() && name[q] != '.' && name[q] != '[') ++q;
        obj = get_attr(obj, name.substr(p + 1, q - p - 1));
        p = q;
      } else {
        const size_t q = name.find(']', p);
        const std::string key = name.substr(p + 1, q - p - 1);
        const bool numeric = !key.empty() && std::all_of(key.begin(), key.end(),
                                                         [](char ch) { return ch >= '0' && ch <= '9'; });
        // An index too long for int64 is looked up as its string: no container holds such an index anyway.
        obj = get_item(
            obj, numeric && key.size() <= 18 ? Value(static_cast<int64_t>(std::stoll(key))) : Value(key));
        p = q + 1;
      }
    }
    if (conversion == 's') {
      obj = Value(to_str(obj));
    } else if (conversion == 'r') {
      obj = Value(to_repr(obj));
    } else if (conversion == 'a') {
      obj = Value(ascii_repr(obj));
    } else if (conversion != 0) {
      throw_error("ValueError", "Unknown conversion specifier {}", conversion);
    }
    out += format_value(obj, spec, limits);
    check_built_size(static_cast<int64_t>(out.size()), 1, limits, "the formatted string");
  }
  return out;
}

}  // namespace tandem::tmpl
