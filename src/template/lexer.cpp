#include "template/lexer.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/utf8.h"
#include "template/unicode.h"

namespace tandem::tmpl {
namespace {

bool is_ascii_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_hex_digit(char c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Maps byte offsets of the normalized source to line/column (column counted in code points).
class PositionMap {
 public:
  explicit PositionMap(std::string_view text) : text_(text) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  SourcePos at(size_t offset) const {
    offset = std::min(offset, text_.size());
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line = static_cast<size_t>(it - line_starts_.begin());
    const size_t start = line_starts_[line - 1];
    // Tokens arrive in increasing order: continue counting from the previous query on the same line so
    // long single-line templates stay linear.
    if (line != cursor_line_ || offset < cursor_offset_) {
      cursor_line_ = line;
      cursor_offset_ = start;
      cursor_column_ = 1;
    }
    cursor_column_ += unicode::length(text_.substr(cursor_offset_, offset - cursor_offset_));
    cursor_offset_ = offset;
    return SourcePos{static_cast<int>(line), static_cast<int>(cursor_column_)};
  }

 private:
  std::string_view text_;
  std::vector<size_t> line_starts_;
  mutable size_t cursor_line_ = 0;
  mutable size_t cursor_offset_ = 0;
  mutable size_t cursor_column_ = 1;
};

// jinja2 normalizes \r\n and \r to \n and (keep_trailing_newline=False) drops one trailing newline.
std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Length in bytes of the Python-whitespace code point starting at text[pos], or 0.
size_t space_at(std::string_view text, size_t pos) {
  if (pos >= text.size()) return 0;
  size_t next = pos;
  const char32_t cp = utf8::decode(text, next);
  return unicode::is_space(cp) ? next - pos : 0;
}

size_t skip_spaces(std::string_view text, size_t pos) {
  while (size_t n = space_at(text, pos)) pos += n;
  return pos;
}

// str.rstrip() with no argument.
std::string_view rstrip_spaces(std::string_view text) {
  size_t end = text.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    size_t probe = start;
    const char32_t cp = utf8::decode(text, probe);
    if (!unicode::is_space(cp)) break;
    end = start;
  }
  return text.substr(0, end);
}

bool all_spaces(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t n = space_at(text, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

// Matches a run of digits optionally separated by single underscores: (\d+_)*\d+. Returns the end or npos.
size_t match_digit_group(std::string_view s, size_t pos) {
  if (pos >= s.size() || !is_ascii_digit(s[pos])) return std::string_view::npos;
  while (pos < s.size()) {
    if (is_ascii_digit(s[pos])) {
      ++pos;
    } else if (s[pos] == '_' && pos + 1 < s.size() && is_ascii_digit(s[pos + 1])) {
      ++pos;
    } else {
      break;
    }
  }
  return pos;
}

std::string without_underscores(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '_') out.push_back(c);
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)), positions_(src_) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      lex_root();
    }
    // An unclosed tag simply ends the token stream; the parser reports what it expected there.
    Token eof;
    eof.type = TokenType::kEof;
    eof.pos = positions_.at(src_.size());
    tokens_.push_back(std::move(eof));
    return std::move(tokens_);
  }

 private:
  enum class State { kRoot, kBlock, kVariable };

  [[noreturn]] void fail(size_t offset, const std::string& message) const {
    RenderError e("TemplateSyntaxError", message);
    e.set_pos(positions_.at(offset));
    throw e;
  }

  void push(TokenType type, std::string value, size_t offset) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    t.pos = positions_.at(offset);
    tokens_.push_back(std::move(t));
  }

  // Text between the previous tag and a tag start, with the tag's whitespace control applied.
  void push_data(size_t begin, size_t end, char sign, bool is_variable) {
    std::string_view text(src_.data() + begin, end - begin);
    if (sign == '-') {
      text = rstrip_spaces(text);
    } else if (sign != '+' && !is_variable) {
      // lstrip_blocks: drop spaces between the start of the line and the tag.
      const size_t nl = text.rfind('\n');
      const size_t line_begin = nl == std::string_view::npos ? 0 : nl + 1;
      if ((line_begin > 0 || line_starting_) && line_begin < text.size() &&
          all_spaces(text.substr(line_begin))) {
        text = text.substr(0, line_begin);
      }
    }
    if (!text.empty()) push(TokenType::kData, std::string(text), begin);
  }

  // Matches `{%(-|+|)\s*raw\s*(-%}\s*|%})` at `at`; returns the end of the match or npos. `sign` receives
  // the whitespace-control character.
  size_t match_raw_begin(size_t at, char& sign) const {
    size_t p = at + 2;
    sign = 0;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
    p = skip_spaces(src_, p);
    if (src_.compare(p, 3, "raw") != 0) return std::string_view::npos;
    p = skip_spaces(src_, p + 3);
    if (src_.compare(p, 3, "-%}") == 0) return skip_spaces(src_, p + 3);
    if (src_.compare(p, 2, "%}") == 0) return p + 2;
    return std::string_view::npos;
  }

  void lex_root() {
    // Earliest "{{", "{%" or "{#".
    size_t tag = pos_;
    for (;;) {
      tag = src_.find('{', tag);
      if (tag == std::string::npos || tag + 1 >= src_.size()) {
        tag = std::string::npos;
        break;
      }
      const char c = src_[tag + 1];
      if (c == '{' || c == '%' || c == '#') break;
      ++tag;
    }
    if (tag == std::string::npos) {
      push(TokenType::kData, src_.substr(pos_), pos_);
      pos_ = src_.size();
      return;
    }
    const char kind = src_[tag + 1];
    char sign = 0;
    if (kind == '%') {
      const size_t raw_end = match_raw_begin(tag, sign);
      if (raw_end != std::string_view::npos) {
        push_data(pos_, tag, sign, false);
        line_starting_ = src_[raw_end - 1] == '\n';
        lex_raw_body(raw_end);
        return;
      }
    }
    size_t after = tag + 2;
    if (after < src_.size() && (src_[after] == '-' || src_[after] == '+')) sign = src_[after++];
    push_data(pos_, tag, sign, kind == '{');
    line_starting_ = false;
    if (kind == '#') {
      lex_comment(after);
      return;
    }
    push(kind == '{' ? TokenType::kVariableBegin : TokenType::kBlockBegin, src_.substr(tag, after - tag),
         tag);
    pos_ = after;
    lex_tag(kind == '{' ? State::kVariable : State::kBlock);
  }

  void lex_comment(size_t from) {
    for (size_t p = from; p < src_.size(); ++p) {
      if (src_.compare(p, 3, "+#}") == 0) {
        finish_after(p + 3);
        return;
      }
      if (src_.compare(p, 3, "-#}") == 0) {
        finish_after(skip_spaces(src_, p + 3));
        return;
      }
      if (src_.compare(p, 2, "#}") == 0) {
        size_t end = p + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;  // trim_blocks applies to comments too
        finish_after(end);
        return;
      }
    }
    fail(from, "Missing end of comment tag");
  }

  void lex_raw_body(size_t from) {
    for (size_t p = from; p < src_.size(); ++p) {
      if (src_.compare(p, 2, "{%") != 0) continue;
      size_t q = p + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      q = skip_spaces(src_, q);
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q = skip_spaces(src_, q + 6);
      size_t end;
      if (src_.compare(q, 3, "+%}") == 0) {
        end = q + 3;
      } else if (src_.compare(q, 3, "-%}") == 0) {
        end = skip_spaces(src_, q + 3);
      } else if (src_.compare(q, 2, "%}") == 0) {
        end = q + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;
      } else {
        continue;
      }
      push_data(from, p, sign, false);
      finish_after(end);
      return;
    }
    fail(from, "Missing end of raw directive");
  }

  void finish_after(size_t end) {
    line_starting_ = end > 0 && src_[end - 1] == '\n';
    pos_ = end;
  }

  // Tries the closing delimiter of the current tag at pos_; on success emits it and returns true.
  bool try_tag_end(State state) {
    if (!balance_.empty()) return false;
    const size_t start = pos_;
    size_t end;
    if (state == State::kBlock) {
      if (src_.compare(pos_, 3, "+%}") == 0) {
        end = pos_ + 3;
      } else if (src_.compare(pos_, 3, "-%}") == 0) {
        end = skip_spaces(src_, pos_ + 3);
      } else if (src_.compare(pos_, 2, "%}") == 0) {
        end = pos_ + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;  // trim_blocks
      } else {
        return false;
      }
      push(TokenType::kBlockEnd, "%}", start);
    } else {
      if (src_.compare(pos_, 3, "-}}") == 0) {
        end = skip_spaces(src_, pos_ + 3);
      } else if (src_.compare(pos_, 2, "}}") == 0) {
        end = pos_ + 2;
      } else {
        return false;
      }
      push(TokenType::kVariableEnd, "}}", start);
    }
    finish_after(end);
    return true;
  }

  void lex_tag(State state) {
    while (pos_ < src_.size()) {
      if (try_tag_end(state)) return;
      if (const size_t n = space_at(src_, pos_)) {
        pos_ = skip_spaces(src_, pos_ + n);
        continue;
      }
      if (lex_number() || lex_name() || lex_string() || lex_operator()) continue;
      fail(pos_, fmt::format("unexpected char {} at {}", py_char_repr(), pos_));
    }
  }

  std::string py_char_repr() const {
    size_t p = pos_;
    std::string ch;
    utf8::append(ch, utf8::decode(src_, p));
    return ch == "'" ? "\"'\"" : "'" + ch + "'";
  }

  bool lex_number() {
    const size_t start = pos_;
    if (!is_ascii_digit(src_[start])) return false;
    // Float: (?<!\.)(\d+_)*\d+((\.(\d+_)*\d+)?e[+-]?(\d+_)*\d+|\.(\d+_)*\d+)
    if (start == 0 || src_[start - 1] != '.') {
      const size_t int_end = match_digit_group(src_, start);
      size_t p = int_end;
      bool has_fraction = false;
      if (p < src_.size() && src_[p] == '.') {
        const size_t frac_end = match_digit_group(src_, p + 1);
        if (frac_end != std::string_view::npos) {
          has_fraction = true;
          p = frac_end;
        }
      }
      size_t end = has_fraction ? p : std::string_view::npos;
      if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
        size_t q = p + 1;
        if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
        const size_t exp_end = match_digit_group(src_, q);
        if (exp_end != std::string_view::npos) end = exp_end;
      }
      if (end != std::string_view::npos) {
        Token t;
        t.type = TokenType::kFloat;
        t.value = src_.substr(start, end - start);
        t.float_value = std::strtod(without_underscores(t.value).c_str(), nullptr);
        t.pos = positions_.at(start);
        tokens_.push_back(std::move(t));
        pos_ = end;
        return true;
      }
    }
    // Integer: 0b.., 0o.., 0x.., [1-9](_?\d)*, 0(_?0)*
    size_t end = start;
    int base = 10;
    if (src_[start] == '0' && start + 1 < src_.size()) {
      const char p = static_cast<char>(src_[start + 1] | 0x20);
      auto digit_ok = [&](char c) {
        if (p == 'b') return c == '0' || c == '1';
        if (p == 'o') return c >= '0' && c <= '7';
        return is_hex_digit(c);
      };
      if (p == 'b' || p == 'o' || p == 'x') {
        size_t q = start + 2;
        size_t last = std::string_view::npos;
        while (q < src_.size()) {
          if (src_[q] == '_' && q + 1 < src_.size() && digit_ok(src_[q + 1])) {
            q += 2;
          } else if (digit_ok(src_[q])) {
            ++q;
          } else {
            break;
          }
          last = q;
        }
        if (last != std::string_view::npos) {
          end = last;
          base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
        }
      }
    }
    if (end == start) {
      if (src_[start] == '0') {
        end = start + 1;
        while (end < src_.size()) {
          if (src_[end] == '0') {
            ++end;
          } else if (src_[end] == '_' && end + 1 < src_.size() && src_[end + 1] == '0') {
            end += 2;
          } else {
            break;
          }
        }
      } else {
        end = match_digit_group(src_, start);
      }
    }
    Token t;
    t.type = TokenType::kInteger;
    t.value = src_.substr(start, end - start);
    std::string digits = without_underscores(t.value);
    if (base != 10) digits = digits.substr(2);
    errno = 0;
    const unsigned long long v = std::strtoull(digits.c_str(), nullptr, base);
    if (errno == ERANGE || v > static_cast<unsigned long long>(std::numeric_limits<int64_t>::max())) {
      fail(start, fmt::format("integer literal {} exceeds the 64-bit range", t.value));
    }
    t.int_value = static_cast<int64_t>(v);
    t.pos = positions_.at(start);
    tokens_.push_back(std::move(t));
    pos_ = end;
    return true;
  }

  static bool name_start(char32_t cp) { return cp == '_' || unicode::is_alpha(cp); }
  static bool name_continue(char32_t cp) { return cp == '_' || unicode::is_alnum(cp); }

  bool lex_name() {
    size_t p = pos_;
    if (!name_start(utf8::decode(src_, p))) return false;
    size_t end = p;
    while (end < src_.size()) {
      size_t q = end;
      if (!name_continue(utf8::decode(src_, q))) break;
      end = q;
    }
    push(TokenType::kName, src_.substr(pos_, end - pos_), pos_);
    pos_ = end;
    return true;
  }

  bool lex_string() {
    const char quote = src_[pos_];
    if (quote != '\'' && quote != '"') return false;
    size_t p = pos_ + 1;
    while (p < src_.size() && src_[p] != quote) {
      p += src_[p] == '\\' ? 2 : 1;
    }
    if (p >= src_.size()) return false;  // unterminated: reported as an unexpected character
    Token t;
    t.type = TokenType::kString;
    t.value = unescape(pos_ + 1, p);
    t.pos = positions_.at(pos_);
    tokens_.push_back(std::move(t));
    pos_ = p + 1;
    return true;
  }

  // Python's "unicode-escape" decoding of a string literal's body.
  std::string unescape(size_t begin, size_t end) const {
    std::string out;
    out.reserve(end - begin);
    size_t p = begin;
    while (p < end) {
      const char c = src_[p];
      if (c != '\\' || p + 1 >= end) {
        out.push_back(c);
        ++p;
        continue;
      }
      const char e = src_[p + 1];
      p += 2;
      switch (e) {
        case '\n':
          break;  // line continuation
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          const int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (int i = 0; i < digits; ++i) {
            if (p + static_cast<size_t>(i) >= end || !is_hex_digit(src_[p + i])) {
              fail(begin,
                   fmt::format("truncated \\{}{} escape", e, std::string(static_cast<size_t>(digits), 'X')));
            }
            const char h = src_[p + i];
            cp = cp * 16 + static_cast<char32_t>(is_ascii_digit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
          }
          if (cp > 0x10FFFF) fail(begin, "illegal Unicode character");
          p += static_cast<size_t>(digits);
          utf8::append(out, cp);
          break;
        }
        case 'N':
          fail(begin, "named Unicode escapes (\\N{...}) are not supported");
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int i = 0; i < 2 && p < end && src_[p] >= '0' && src_[p] <= '7'; ++i) {
              cp = cp * 8 + static_cast<char32_t>(src_[p++] - '0');
            }
            utf8::append(out, cp);
          } else {
            // Unknown escapes keep the backslash, as Python does.
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    return out;
  }

  bool lex_operator() {
    static constexpr std::array<std::string_view, 6> kTwoChar = {"//", "**", "==", "!=", ">=", "<="};
    static constexpr std::string_view kOneChar = "+-/*%~[](){}><=.:|,;";
    std::string op;
    for (std::string_view two : kTwoChar) {
      if (src_.compare(pos_, 2, two) == 0) {
        op = two;
        break;
      }
    }
    if (op.empty()) {
      if (kOneChar.find(src_[pos_]) == std::string_view::npos) return false;
      op = std::string(1, src_[pos_]);
    }
    if (op == "{" || op == "(" || op == "[") {
      balance_.push_back(op == "{" ? '}' : op == "(" ? ')' : ']');
    } else if (op == "}" || op == ")" || op == "]") {
      if (balance_.empty()) fail(pos_, fmt::format("unexpected '{}'", op));
      const char expected = balance_.back();
      balance_.pop_back();
      if (expected != op[0]) fail(pos_, fmt::format("unexpected '{}', expected '{}'", op, expected));
    }
    push(TokenType::kOperator, op, pos_);
    pos_ += op.size();
    return true;
  }

  std::string src_;
  PositionMap positions_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<char> balance_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source) {
  return Lexer(normalize_source(source)).run();
}

std::string describe_token(const Token& token) {
  switch (token.type) {
    case TokenType::kName:
    case TokenType::kOperator:
      return token.value;
    case TokenType::kData:
      return "template data / text";
    case TokenType::kVariableBegin:
      return "begin of print statement";
    case TokenType::kVariableEnd:
      return "end of print statement";
    case TokenType::kBlockBegin:
      return "begin of statement block";
    case TokenType::kBlockEnd:
      return "end of statement block";
    case TokenType::kString:
      return "string";
    case TokenType::kInteger:
      return "integer";
    case TokenType::kFloat:
      return "float";
    case TokenType::kEof:
      return "end of template";
  }
  return "token";
}

}  // namespace tandem::tmpl
