#include "template/json_dumps.h"

#include <algorithm>
#include <cmath>

#include "core/utf8.h"
#include "template/limits.h"
#include "template/py_ops.h"
#include "template/render_error.h"
#include "template/unicode.h"

namespace tandem::tmpl {
namespace {

constexpr int kMaxDepth = 500;  // Python raises RecursionError well before this on nested data

void append_u_escape(std::string& out, uint32_t unit) {
  out += fmt::format("\\u{:04x}", unit);
}

void encode_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out.push_back('"');
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t start = pos;
    const char32_t cp = utf8::decode(s, pos);
    switch (cp) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (cp < 0x20) {
      append_u_escape(out, cp);
    } else if (!ensure_ascii || (cp >= 0x20 && cp <= 0x7E)) {
      out.append(s, start, pos - start);
    } else if (cp >= 0x10000) {
      const uint32_t v = cp - 0x10000;
      append_u_escape(out, 0xD800 | (v >> 10));
      append_u_escape(out, 0xDC00 | (v & 0x3FF));
    } else {
      append_u_escape(out, cp);
    }
  }
  out.push_back('"');
}

std::string float_str(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  return py_float_repr(d);
}

class Encoder {
 public:
  explicit Encoder(const JsonDumpOptions& o) : o_(o) {
    if (o.separators) {
      item_sep_ = o.separators->first;
      key_sep_ = o.separators->second;
    } else {
      item_sep_ = o.indent ? "," : ", ";
      key_sep_ = ": ";
    }
  }

  void encode(std::string& out, const Value& v, int level) {
    if (level > kMaxDepth)
      throw_error("RecursionError", "maximum recursion depth exceeded while encoding a JSON object");
    if (out.size() > o_.max_bytes) throw_limit("the tojson text", "max_output_bytes", o_.max_bytes);
    switch (v.kind()) {
      case Value::Kind::kNone:
        out += "null";
        return;
      case Value::Kind::kBool:
        out += v.as_bool() ? "true" : "false";
        return;
      case Value::Kind::kInt:
        out += std::to_string(v.as_int());
        return;
      case Value::Kind::kFloat:
        out += float_str(v.as_float());
        return;
      case Value::Kind::kString:
        encode_string(out, v.as_str(), o_.ensure_ascii);
        return;
      case Value::Kind::kSequence: {
        const SeqKind k = v.seq().kind;
        if (k != SeqKind::kList && k != SeqKind::kTuple) break;
        encode_list(out, v.seq().items, level);
        return;
      }
      case Value::Kind::kDict:
        encode_dict(out, v.dict(), level);
        return;
      default:
        break;
    }
    throw_error("TypeError", "Object of type {} is not JSON serializable", v.type_name());
  }

 private:
  void newline(std::string& out, int level) const {
    const size_t room = o_.max_bytes - std::min(o_.max_bytes, out.size() + 1);
    if (!o_.indent->empty() && static_cast<size_t>(level) > room / o_.indent->size())
      throw_limit("the tojson text", "max_output_bytes", o_.max_bytes);
    out.push_back('\n');
    for (int i = 0; i < level; ++i) out += *o_.indent;
  }

  void encode_list(std::string& out, const std::vector<Value>& items, int level) {
    if (items.empty()) {
      out += "[]";
      return;
    }
    out.push_back('[');
    for (size_t i = 0; i < items.size(); ++i) {
      if (i) out += item_sep_;
      if (o_.indent) newline(out, level + 1);
      encode(out, items[i], level + 1);
    }
    if (o_.indent) newline(out, level);
    out.push_back(']');
  }

  std::string key_string(const Value& k) const {
    switch (k.kind()) {
      case Value::Kind::kString:
        return k.as_str();
      case Value::Kind::kFloat:
        return float_str(k.as_float());
      case Value::Kind::kBool:
        return k.as_bool() ? "true" : "false";
      case Value::Kind::kNone:
        return "null";
      case Value::Kind::kInt:
        return std::to_string(k.as_int());
      default:
        throw_error("TypeError", "keys must be str, int, float, bool or None, not {}", k.type_name());
    }
  }

  void encode_dict(std::string& out, const Dict& d, int level) {
    if (d.empty()) {
      out += "{}";
      return;
    }
    std::vector<const std::pair<Value, Value>*> entries;
    entries.reserve(d.size());
    for (const auto& e : d.entries()) entries.push_back(&e);
    if (o_.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto* a, const auto* b) { return less_than(a->first, b->first); });
    }
    out.push_back('{');
    bool first = true;
    for (const auto* e : entries) {
      if (!first) out += item_sep_;
      first = false;
      if (o_.indent) newline(out, level + 1);
      encode_string(out, key_string(e->first), o_.ensure_ascii);
      out += key_sep_;
      encode(out, e->second, level + 1);
    }
    if (o_.indent) newline(out, level);
    out.push_back('}');
  }

  const JsonDumpOptions& o_;
  std::string item_sep_;
  std::string key_sep_;
};

}  // namespace

std::string json_dumps(const Value& v, const JsonDumpOptions& options) {
  std::string out;
  Encoder(options).encode(out, v, 0);
  return out;
}

}  // namespace tandem::tmpl
