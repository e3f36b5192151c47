#include "template/unicode.h"

#include <algorithm>
#include <iterator>

#include "core/utf8.h"

namespace tandem::tmpl::unicode {
namespace {

enum CharFlags : uint16_t {
  kAlpha = 1 << 0,
  kDigit = 1 << 1,
  kDecimal = 1 << 2,
  kNumeric = 1 << 3,
  kLower = 1 << 4,
  kUpper = 1 << 5,
  kTitle = 1 << 6,
  kPrintable = 1 << 7,
  kSpace = 1 << 8,
};

struct CharRun {
  char32_t start;
  uint16_t flags;
};

struct CaseMapping {
  char32_t cp;
  char32_t to[3];  // zero-terminated when shorter than 3
};

#include "template/unicode_tables.inc"

uint16_t flags_of(char32_t cp) {
  if (cp >= 0x110000) return 0;
  // Last run whose start is <= cp.
  auto it = std::upper_bound(std::begin(kCharRuns), std::end(kCharRuns), cp,
                             [](char32_t value, const CharRun& run) { return value < run.start; });
  return std::prev(it)->flags;
}

template <size_t N>
void append_mapped(const CaseMapping (&table)[N], std::u32string& out, char32_t cp) {
  auto it = std::lower_bound(std::begin(table), std::end(table), cp,
                             [](const CaseMapping& m, char32_t value) { return m.cp < value; });
  if (it == std::end(table) || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  for (char32_t c : it->to) {
    if (c == 0) break;
    out.push_back(c);
  }
}

}  // namespace

std::u32string to_u32(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) out.push_back(utf8::decode(text, pos));
  return out;
}

std::string to_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : text) utf8::append(out, cp);
  return out;
}

size_t length(std::string_view text) {
  size_t n = 0;
  for (char c : text) {
    // Count every byte that is not a UTF-8 continuation byte.
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool is_space(char32_t cp) {
  return (flags_of(cp) & kSpace) != 0;
}
bool is_printable(char32_t cp) {
  return (flags_of(cp) & kPrintable) != 0;
}
bool is_alpha(char32_t cp) {
  return (flags_of(cp) & kAlpha) != 0;
}
bool is_digit(char32_t cp) {
  return (flags_of(cp) & kDigit) != 0;
}
bool is_decimal(char32_t cp) {
  return (flags_of(cp) & kDecimal) != 0;
}
bool is_numeric(char32_t cp) {
  return (flags_of(cp) & kNumeric) != 0;
}
bool is_lower(char32_t cp) {
  return (flags_of(cp) & kLower) != 0;
}
bool is_upper(char32_t cp) {
  return (flags_of(cp) & kUpper) != 0;
}
bool is_title(char32_t cp) {
  return (flags_of(cp) & kTitle) != 0;
}
bool is_cased(char32_t cp) {
  return (flags_of(cp) & (kLower | kUpper | kTitle)) != 0;
}
bool is_alnum(char32_t cp) {
  return (flags_of(cp) & (kAlpha | kDecimal | kDigit | kNumeric)) != 0;
}

void append_lower(std::u32string& out, char32_t cp) {
  append_mapped(kLowerMap, out, cp);
}
void append_upper(std::u32string& out, char32_t cp) {
  append_mapped(kUpperMap, out, cp);
}
void append_title(std::u32string& out, char32_t cp) {
  append_mapped(kTitleMap, out, cp);
}

const char* tables_version() {
  return kUnicodeVersion;
}

}  // namespace tandem::tmpl::unicode
