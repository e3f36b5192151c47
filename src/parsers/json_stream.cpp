#include "parsers/json_stream.h"

#include "parsers/text_scanner.h"

namespace tandem::parsers {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The UTF-16 code unit of the last four hex digits of an escape such as \u00e9.
int code_unit(std::string_view escape) {
  int v = 0;
  for (char c : escape.substr(escape.size() - 4)) v = v * 16 + hex_value(c);
  return v;
}

bool is_high_surrogate(int u) { return u >= 0xD800 && u <= 0xDBFF; }
bool is_low_surrogate(int u) { return u >= 0xDC00 && u <= 0xDFFF; }
bool is_number_byte(char c) { return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'; }

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xF];
          out += kHex[c & 0xF];
        } else {
          out += c;
        }
    }
  }
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  append_json_escaped(out, s);
  out += '"';
  return out;
}

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool JsonStreamer::number_valid() const {
  std::string_view s = scalar_;
  size_t i = 0;
  auto digits = [&] {
    const size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - from;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (digits() == 0) {
    return false;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

void JsonStreamer::value_done() {
  if (stack_.empty()) {
    complete_ = true;
  } else {
    stack_.back().expect = Expect::kCommaOrEnd;
  }
}

bool JsonStreamer::start_value(char c) {
  const bool top = stack_.empty();
  switch (c) {
    case '{':
    case '[':
      out_ += held_;
      out_ += c;
      held_.clear();
      stack_.push_back({.object = c == '{', .expect = c == '{' ? Expect::kKeyOrEnd : Expect::kValueOrEnd});
      break;
    case '"':
      out_ += held_;
      out_ += c;
      held_.clear();
      in_key_ = false;
      mode_ = Mode::kString;
      break;
    case 't':
    case 'f':
    case 'n':
      literal_ = c == 't' ? "true" : c == 'f' ? "false" : "null";
      held_ += c;
      scalar_ = c;
      mode_ = Mode::kLiteral;
      break;
    default:
      if (c != '-' && !(c >= '0' && c <= '9')) return false;
      held_ += c;
      scalar_ = c;
      mode_ = Mode::kNumber;
  }
  if (top) {
    started_ = true;
    first_ = c;
    top_expect_ = Expect::kCommaOrEnd;  // nothing may follow the top-level value
  }
  return true;
}

size_t JsonStreamer::push(std::string_view text, Status& status) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (complete_) {
      status = Status::kDone;
      return i;
    }
    const char c = text[i];
    if (mode_ == Mode::kNumber && !is_number_byte(c)) {
      // The number ends before `c`.
      if (!number_valid()) {
        status = Status::kError;
        return i;
      }
      out_ += held_;
      held_.clear();
      scalar_.clear();
      mode_ = Mode::kNormal;
      value_done();
      if (complete_) {
        status = Status::kDone;
        return i;
      }
    }
    if (!step(c)) {
      status = Status::kError;
      return i;
    }
  }
  status = complete_ ? Status::kDone : Status::kMore;
  return text.size();
}

bool JsonStreamer::step(char c) {
  switch (mode_) {
    case Mode::kNormal: {
      if (is_space(c)) return true;
      Expect& expect = stack_.empty() ? top_expect_ : stack_.back().expect;
      switch (expect) {
        case Expect::kValue:  // the enclosing frame moves on in value_done(), once the value ends
          return start_value(c);
        case Expect::kValueOrEnd:
          if (c == ']') break;
          return start_value(c);
        case Expect::kKeyOrEnd:
        case Expect::kKey:
          if (c == '}' && expect == Expect::kKeyOrEnd) break;
          if (c != '"') return false;
          held_ += c;
          in_key_ = true;
          mode_ = Mode::kString;
          return true;
        case Expect::kColon:
          if (c != ':') return false;
          held_ += c;
          expect = Expect::kValue;
          return true;
        case Expect::kCommaOrEnd:
          if (stack_.empty()) return false;  // text after the top-level value
          if (c == ',') {
            held_ += c;
            expect = stack_.back().object ? Expect::kKey : Expect::kValue;
            return true;
          }
          if (c != (stack_.back().object ? '}' : ']')) return false;
          break;
      }
      // `c` closes the innermost container.
      out_ += c;
      stack_.pop_back();
      value_done();
      return true;
    }
    case Mode::kString: {
      if (!escape_.empty()) {  // a high surrogate escape waits for its low half
        if (c != '\\') return false;
        escape_ += c;
        mode_ = Mode::kEscape;
        return true;
      }
      if (c == '"') {
        sink() += c;
        mode_ = Mode::kNormal;
        if (in_key_) {
          in_key_ = false;
          stack_.back().expect = Expect::kColon;
        } else {
          value_done();
        }
        return true;
      }
      if (c == '\\') {
        escape_.assign(1, '\\');  // (not `= "\\"`: GCC 12 -Wrestrict false positive at -O2)
        mode_ = Mode::kEscape;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) {
        append_json_escaped(sink(), std::string_view(&c, 1));
      } else {
        sink() += c;
      }
      return true;
    }
    case Mode::kEscape: {
      const bool pair_half = escape_.size() > 1;  // "\uD8xx\" so far
      if (c == 'u') {
        escape_ += c;
        hex_left_ = 4;
        mode_ = Mode::kUnicode;
        return true;
      }
      if (pair_half || std::string_view("\"\\/bfnrt").find(c) == std::string_view::npos) return false;
      sink() += escape_;
      sink() += c;
      escape_.clear();
      mode_ = Mode::kString;
      return true;
    }
    case Mode::kUnicode: {
      if (hex_value(c) < 0) return false;
      if (hex_left_ == 1) {
        const int unit = code_unit(escape_.substr(escape_.size() - 3) + c);
        const bool pair_half = escape_.size() > 6;
        if (pair_half ? !is_low_surrogate(unit) : is_low_surrogate(unit)) return false;
        escape_ += c;
        mode_ = Mode::kString;
        if (!pair_half && is_high_surrogate(unit)) return true;  // keep it until the low half arrives
        sink() += escape_;
        escape_.clear();
        return true;
      }
      escape_ += c;
      --hex_left_;
      return true;
    }
    case Mode::kNumber:  // push() ends numbers at the first byte that cannot continue one
      held_ += c;
      scalar_ += c;
      return true;
    case Mode::kLiteral:
      if (c != literal_[scalar_.size()]) return false;
      held_ += c;
      scalar_ += c;
      if (scalar_.size() == literal_.size()) {
        out_ += held_;
        held_.clear();
        scalar_.clear();
        mode_ = Mode::kNormal;
        value_done();
      }
      return true;
  }
  return false;
}

bool JsonStreamer::end_of_input() {
  if (!complete_ && mode_ == Mode::kNumber && stack_.empty() && number_valid()) {
    out_ += held_;
    held_.clear();
    scalar_.clear();
    mode_ = Mode::kNormal;
    complete_ = true;
  }
  return complete_;
}

void JsonStreamer::close_truncated() {
  if (complete_) return;
  const bool in_string = mode_ == Mode::kString || mode_ == Mode::kEscape || mode_ == Mode::kUnicode;
  if (in_string && !in_key_) out_ += '"';
  held_.clear();
  escape_.clear();
  scalar_.clear();
  in_key_ = false;
  mode_ = Mode::kNormal;
  for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) out_ += it->object ? '}' : ']';
  stack_.clear();
  complete_ = true;
}

std::string JsonStreamer::take() {
  std::string s = std::move(out_);
  out_.clear();
  return s;
}

}  // namespace tandem::parsers
