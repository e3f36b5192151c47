#include "template/py_string.h"

#include <algorithm>
#include <limits>

#include "core/utf8.h"
#include "template/render_error.h"
#include "template/unicode.h"

namespace tandem::tmpl::py {
namespace {

using unicode::to_u32;
using unicode::to_utf8;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

bool is_linebreak(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
         c == 0x85 || c == 0x2028 || c == 0x2029;
}

// CPython's ADJUST_INDICES for find/count/startswith.
void adjust_indices(int64_t len, int64_t& start, int64_t& end) {
  if (end > len) {
    end = len;
  } else if (end < 0) {
    end += len;
    if (end < 0) end = 0;
  }
  if (start < 0) {
    start += len;
    if (start < 0) start = 0;
  }
}

std::u32string map_chars(std::string_view s, void (*fn)(std::u32string&, char32_t)) {
  std::u32string out;
  size_t pos = 0;
  while (pos < s.size()) fn(out, utf8::decode(s, pos));
  return out;
}

template <typename Pred>
bool all_of_nonempty(std::string_view s, Pred pred) {
  if (s.empty()) return false;
  size_t pos = 0;
  while (pos < s.size()) {
    if (!pred(utf8::decode(s, pos))) return false;
  }
  return true;
}

std::u32string chars_for(const std::optional<std::string>& chars) {
  return chars ? to_u32(*chars) : std::u32string();
}

}  // namespace

SliceBounds slice_bounds(int64_t length, std::optional<int64_t> start_in, std::optional<int64_t> stop_in,
                         std::optional<int64_t> step_in) {
  SliceBounds b;
  b.step = step_in.value_or(1);
  if (b.step == 0) throw_error("ValueError", "slice step cannot be zero");
  auto adjust = [&](std::optional<int64_t> v, bool is_start) -> int64_t {
    if (!v) {
      if (is_start) return b.step < 0 ? length - 1 : 0;
      return b.step < 0 ? -1 : length;
    }
    int64_t x = *v;
    if (x < 0) {
      x += length;
      if (x < 0) x = b.step < 0 ? -1 : 0;
    } else if (x >= length) {
      x = b.step < 0 ? length - 1 : length;
    }
    return x;
  };
  b.start = adjust(start_in, true);
  b.stop = adjust(stop_in, false);
  if (b.step > 0) {
    b.count = b.start < b.stop ? (b.stop - b.start - 1) / b.step + 1 : 0;
  } else {
    b.count = b.stop < b.start ? (b.start - b.stop - 1) / (-b.step) + 1 : 0;
  }
  return b;
}

std::string slice(std::string_view s, const SliceBounds& b) {
  if (b.step == 1 && unicode::is_ascii(s)) {
    return std::string(s.substr(static_cast<size_t>(b.start), static_cast<size_t>(b.count)));
  }
  const std::u32string u = to_u32(s);
  std::u32string out;
  out.reserve(static_cast<size_t>(b.count));
  int64_t i = b.start;
  for (int64_t n = 0; n < b.count; ++n, i += b.step) out.push_back(u[static_cast<size_t>(i)]);
  return to_utf8(out);
}

std::optional<std::string> char_at(std::string_view s, int64_t index) {
  const std::u32string u = to_u32(s);
  const auto len = static_cast<int64_t>(u.size());
  if (index < 0) index += len;
  if (index < 0 || index >= len) return std::nullopt;
  std::string out;
  utf8::append(out, u[static_cast<size_t>(index)]);
  return out;
}

std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  const std::u32string u = to_u32(s);
  const std::u32string set = chars_for(chars);
  auto strippable = [&](char32_t c) {
    return chars ? set.find(c) != std::u32string::npos : unicode::is_space(c);
  };
  size_t b = 0;
  size_t e = u.size();
  if (left) {
    while (b < e && strippable(u[b])) ++b;
  }
  if (right) {
    while (e > b && strippable(u[e - 1])) --e;
  }
  return to_utf8(std::u32string_view(u).substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  int64_t maxcount = maxsplit < 0 ? kMax : maxsplit;
  std::vector<std::string> out;
  if (!sep) {
    const std::u32string u = to_u32(s);
    const size_t len = u.size();
    size_t i = 0;
    while (maxcount-- > 0) {
      while (i < len && unicode::is_space(u[i])) ++i;
      if (i == len) break;
      const size_t j = i++;
      while (i < len && !unicode::is_space(u[i])) ++i;
      out.push_back(to_utf8(std::u32string_view(u).substr(j, i - j)));
    }
    if (i < len) {
      while (i < len && unicode::is_space(u[i])) ++i;
      if (i != len) out.push_back(to_utf8(std::u32string_view(u).substr(i)));
    }
    return out;
  }
  if (sep->empty()) throw_error("ValueError", "empty separator");
  size_t i = 0;
  while (maxcount-- > 0) {
    const size_t pos = s.find(*sep, i);
    if (pos == std::string_view::npos) break;
    out.emplace_back(s.substr(i, pos - i));
    i = pos + sep->size();
  }
  out.emplace_back(s.substr(i));
  return out;
}

std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  int64_t maxcount = maxsplit < 0 ? kMax : maxsplit;
  std::vector<std::string> out;
  if (!sep) {
    const std::u32string u = to_u32(s);
    auto i = static_cast<int64_t>(u.size()) - 1;
    auto sp = [&](int64_t k) { return unicode::is_space(u[static_cast<size_t>(k)]); };
    while (maxcount-- > 0) {
      while (i >= 0 && sp(i)) --i;
      if (i < 0) break;
      const int64_t j = i--;
      while (i >= 0 && !sp(i)) --i;
      out.push_back(
          to_utf8(std::u32string_view(u).substr(static_cast<size_t>(i + 1), static_cast<size_t>(j - i))));
    }
    if (i >= 0) {
      while (i >= 0 && sp(i)) --i;
      if (i >= 0) out.push_back(to_utf8(std::u32string_view(u).substr(0, static_cast<size_t>(i + 1))));
    }
    std::reverse(out.begin(), out.end());
    return out;
  }
  if (sep->empty()) throw_error("ValueError", "empty separator");
  size_t j = s.size();
  while (maxcount-- > 0) {
    if (j < sep->size()) break;
    const size_t pos = s.rfind(*sep, j - sep->size());
    if (pos == std::string_view::npos) break;
    out.emplace_back(s.substr(pos + sep->size(), j - pos - sep->size()));
    j = pos;
  }
  out.emplace_back(s.substr(0, j));
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> splitlines(std::string_view s, bool keepends) {
  const std::u32string u = to_u32(s);
  std::vector<std::string> out;
  size_t i = 0;
  const size_t len = u.size();
  while (i < len) {
    const size_t j = i;
    while (i < len && !is_linebreak(u[i])) ++i;
    size_t eol = i;
    if (i < len) {
      if (u[i] == '\r' && i + 1 < len && u[i + 1] == '\n') {
        i += 2;
      } else {
        ++i;
      }
      if (keepends) eol = i;
    }
    out.push_back(to_utf8(std::u32string_view(u).substr(j, eol - j)));
  }
  return out;
}

std::string replace(std::string_view s, std::string_view old_sub, std::string_view new_sub, int64_t count,
                    const TemplateLimits& limits) {
  int64_t remaining = count < 0 ? kMax : count;
  std::string out;
  // Each insertion is checked before it is made: replacing every character of a long string by a long string
  // would otherwise build the product of their sizes.
  auto insert_new = [&] {
    check_built_size(1, out.size() + new_sub.size(), limits, "the replaced string");
    out += new_sub;
  };
  if (old_sub.empty()) {
    // Python inserts `new` before every character and at the end.
    size_t pos = 0;
    while (pos < s.size()) {
      if (remaining > 0) {
        insert_new();
        --remaining;
      }
      const size_t start = pos;
      utf8::decode(s, pos);
      out += s.substr(start, pos - start);
    }
    if (remaining > 0) insert_new();
    return out;
  }
  size_t i = 0;
  while (remaining > 0) {
    const size_t pos = s.find(old_sub, i);
    if (pos == std::string_view::npos) break;
    out += s.substr(i, pos - i);
    insert_new();
    i = pos + old_sub.size();
    --remaining;
  }
  out += s.substr(i);
  return out;
}

int64_t find(std::string_view s, std::string_view sub, std::optional<int64_t> start_in,
             std::optional<int64_t> end_in) {
  const std::u32string u = to_u32(s);
  const std::u32string v = to_u32(sub);
  const auto len = static_cast<int64_t>(u.size());
  int64_t start = start_in.value_or(0);
  int64_t end = end_in.value_or(kMax);
  adjust_indices(len, start, end);
  if (start > len || end - start < static_cast<int64_t>(v.size())) return -1;
  const size_t pos =
      std::u32string_view(u).substr(0, static_cast<size_t>(end)).find(v, static_cast<size_t>(start));
  return pos == std::u32string::npos ? -1 : static_cast<int64_t>(pos);
}

int64_t rfind(std::string_view s, std::string_view sub, std::optional<int64_t> start_in,
              std::optional<int64_t> end_in) {
  const std::u32string u = to_u32(s);
  const std::u32string v = to_u32(sub);
  const auto len = static_cast<int64_t>(u.size());
  int64_t start = start_in.value_or(0);
  int64_t end = end_in.value_or(kMax);
  adjust_indices(len, start, end);
  if (start > len || end - start < static_cast<int64_t>(v.size())) return -1;
  const std::u32string_view window =
      std::u32string_view(u).substr(static_cast<size_t>(start), static_cast<size_t>(end - start));
  const size_t pos = window.rfind(v);
  return pos == std::u32string::npos ? -1 : static_cast<int64_t>(pos) + start;
}

int64_t count(std::string_view s, std::string_view sub, std::optional<int64_t> start_in,
              std::optional<int64_t> end_in) {
  const std::u32string u = to_u32(s);
  const std::u32string v = to_u32(sub);
  const auto len = static_cast<int64_t>(u.size());
  int64_t start = start_in.value_or(0);
  int64_t end = end_in.value_or(kMax);
  adjust_indices(len, start, end);
  if (start > len || end < start) return 0;
  if (v.empty()) return end - start + 1;
  const std::u32string_view window =
      std::u32string_view(u).substr(static_cast<size_t>(start), static_cast<size_t>(end - start));
  int64_t n = 0;
  size_t pos = 0;
  while ((pos = window.find(v, pos)) != std::u32string::npos) {
    ++n;
    pos += v.size();
  }
  return n;
}

bool startswith(std::string_view s, std::string_view prefix, std::optional<int64_t> start_in,
                std::optional<int64_t> end_in) {
  if (!start_in && !end_in) return s.substr(0, prefix.size()) == prefix;
  const std::u32string u = to_u32(s);
  const std::u32string p = to_u32(prefix);
  int64_t start = start_in.value_or(0);
  int64_t end = end_in.value_or(kMax);
  adjust_indices(static_cast<int64_t>(u.size()), start, end);
  end -= static_cast<int64_t>(p.size());
  if (end < start) return false;
  return std::u32string_view(u).substr(static_cast<size_t>(start), p.size()) == p;
}

bool endswith(std::string_view s, std::string_view suffix, std::optional<int64_t> start_in,
              std::optional<int64_t> end_in) {
  if (!start_in && !end_in) return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
  const std::u32string u = to_u32(s);
  const std::u32string p = to_u32(suffix);
  int64_t start = start_in.value_or(0);
  int64_t end = end_in.value_or(kMax);
  adjust_indices(static_cast<int64_t>(u.size()), start, end);
  if (end - static_cast<int64_t>(p.size()) < start) return false;
  return std::u32string_view(u).substr(static_cast<size_t>(end) - p.size(), p.size()) == p;
}

std::string upper(std::string_view s) {
  return to_utf8(map_chars(s, unicode::append_upper));
}

std::string lower(std::string_view s) {
  return to_utf8(map_chars(s, unicode::append_lower));
}

std::string title(std::string_view s) {
  std::u32string out;
  bool previous_is_cased = false;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = utf8::decode(s, pos);
    if (previous_is_cased) {
      unicode::append_lower(out, c);
    } else {
      unicode::append_title(out, c);
    }
    previous_is_cased = unicode::is_cased(c);
  }
  return to_utf8(out);
}

std::string capitalize(std::string_view s) {
  std::u32string out;
  size_t pos = 0;
  bool first = true;
  while (pos < s.size()) {
    const char32_t c = utf8::decode(s, pos);
    if (first) {
      unicode::append_title(out, c);
      first = false;
    } else {
      unicode::append_lower(out, c);
    }
  }
  return to_utf8(out);
}

std::string swapcase(std::string_view s) {
  std::u32string out;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = utf8::decode(s, pos);
    if (unicode::is_upper(c)) {
      unicode::append_lower(out, c);
    } else if (unicode::is_lower(c)) {
      unicode::append_upper(out, c);
    } else {
      out.push_back(c);
    }
  }
  return to_utf8(out);
}

bool isspace(std::string_view s) {
  return all_of_nonempty(s, unicode::is_space);
}
bool isalpha(std::string_view s) {
  return all_of_nonempty(s, unicode::is_alpha);
}
bool isalnum(std::string_view s) {
  return all_of_nonempty(s, unicode::is_alnum);
}
bool isdigit(std::string_view s) {
  return all_of_nonempty(s, unicode::is_digit);
}
bool isdecimal(std::string_view s) {
  return all_of_nonempty(s, unicode::is_decimal);
}
bool isnumeric(std::string_view s) {
  return all_of_nonempty(s, unicode::is_numeric);
}

bool islower(std::string_view s) {
  bool cased = false;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = utf8::decode(s, pos);
    if (unicode::is_upper(c) || unicode::is_title(c)) return false;
    if (unicode::is_lower(c)) cased = true;
  }
  return cased;
}

bool isupper(std::string_view s) {
  bool cased = false;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = utf8::decode(s, pos);
    if (unicode::is_lower(c) || unicode::is_title(c)) return false;
    if (unicode::is_upper(c)) cased = true;
  }
  return cased;
}

bool istitle(std::string_view s) {
  bool cased = false;
  bool previous_is_cased = false;
  size_t pos = 0;
  while (pos < s.size()) {
    const char32_t c = utf8::decode(s, pos);
    if (unicode::is_upper(c) || unicode::is_title(c)) {
      if (previous_is_cased) return false;
      previous_is_cased = cased = true;
    } else if (unicode::is_lower(c)) {
      if (!previous_is_cased) return false;
      previous_is_cased = cased = true;
    } else {
      previous_is_cased = false;
    }
  }
  return cased;
}

std::string pad(std::string_view s, int64_t width, std::string_view fill, char align,
                const TemplateLimits& limits) {
  const auto len = static_cast<int64_t>(unicode::length(s));
  if (width <= len) return std::string(s);
  const int64_t marg = width - len;
  check_built_size(marg, fill.size(), limits, "the padded string");
  int64_t left = 0;
  if (align == '>') {
    left = marg;
  } else if (align == '^') {
    left = marg / 2 + (marg & width & 1);
  }
  const int64_t right = marg - left;
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < right; ++i) out += fill;
  return out;
}

std::string zfill(std::string_view s, int64_t width, const TemplateLimits& limits) {
  const auto len = static_cast<int64_t>(unicode::length(s));
  if (len >= width) return std::string(s);
  check_built_size(width - len, 1, limits, "the zero-filled string");
  const auto fill = static_cast<size_t>(width - len);
  std::string out(fill, '0');
  out += s;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    out[0] = s[0];
    out[fill] = '0';
  }
  return out;
}

std::string reversed(std::string_view s) {
  std::u32string u = to_u32(s);
  std::reverse(u.begin(), u.end());
  return to_utf8(u);
}

std::vector<std::string> chars(std::string_view s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t start = pos;
    utf8::decode(s, pos);
    out.emplace_back(s.substr(start, pos - start));
  }
  return out;
}

}  // namespace tandem::tmpl::py
