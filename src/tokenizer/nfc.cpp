// Canonical decomposition, canonical ordering and canonical composition (Unicode Standard, chapter 3.11), with
// Hangul syllables handled arithmetically (chapter 3.12).
#include "tokenizer/nfc.h"

#include <algorithm>
#include <array>
#include <tuple>
#include <vector>

#include "core/utf8.h"
#include "tokenizer/unicode_tables.h"

namespace tandem::tokenizer {
namespace {

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

// Bitmap of the NFC-unsafe code points in the BMP, where nearly all text lives; above it, binary search.
class UnsafeSet {
 public:
  UnsafeSet() {
    for (const auto& r : unicode::nfc_unsafe_ranges()) {
      for (char32_t c = r.first; c <= r.last && c < 0x10000; ++c) bmp_[c >> 6] |= uint64_t{1} << (c & 63);
    }
  }
  bool contains(char32_t c) const {
    if (c < 0x10000) return (bmp_[c >> 6] >> (c & 63)) & 1;
    const auto ranges = unicode::nfc_unsafe_ranges();
    auto it = std::upper_bound(ranges.begin(), ranges.end(), c,
                               [](char32_t v, const unicode::CodePointRange& r) { return v < r.first; });
    return it != ranges.begin() && c <= std::prev(it)->last;
  }

 private:
  std::array<uint64_t, 0x10000 / 64> bmp_{};
};

const UnsafeSet& unsafe_set() {
  static const UnsafeSet set;
  return set;
}

uint8_t ccc(char32_t c) {
  if (c < 0x300) return 0;
  const auto ranges = unicode::ccc_ranges();
  auto it = std::upper_bound(ranges.begin(), ranges.end(), c,
                             [](char32_t v, const unicode::CccRange& r) { return v < r.first; });
  if (it == ranges.begin()) return 0;
  --it;
  return c <= it->last ? it->ccc : 0;
}

void decompose(char32_t c, std::vector<char32_t>& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t s = c - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto table = unicode::decompositions();
  auto it = std::lower_bound(table.begin(), table.end(), c,
                             [](const unicode::Decomposition& d, char32_t v) { return d.cp < v; });
  if (it == table.end() || it->cp != c) {
    out.push_back(c);
    return;
  }
  decompose(it->first, out);  // the first part may decompose further; the second never does
  if (it->second != 0) out.push_back(it->second);
}

// Returns the primary composite of (a, b), or 0 if there is none.
char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const auto table = unicode::compositions();
  auto it = std::lower_bound(table.begin(), table.end(), std::pair{a, b},
                             [](const unicode::Composition& c, const std::pair<char32_t, char32_t>& v) {
                               return c.first != v.first ? c.first < v.first : c.second < v.second;
                             });
  return it != table.end() && it->first == a && it->second == b ? it->composite : 0;
}

}  // namespace

bool nfc_quick_check(std::string_view s) {
  const UnsafeSet& unsafe = unsafe_set();
  size_t pos = 0;
  while (pos < s.size()) {
    while (pos + 8 <= s.size()) {  // ASCII, eight bytes at a time
      uint64_t w;
      __builtin_memcpy(&w, s.data() + pos, 8);
      if (w & 0x8080808080808080ULL) break;
      pos += 8;
    }
    if (pos >= s.size()) break;
    const auto b = static_cast<uint8_t>(s[pos]);
    if (b < 0xCC) {  // every code point below U+0300 is NFC-safe; U+0300 encodes as CC 80
      pos += utf8::sequence_length(b);
      continue;
    }
    if (unsafe.contains(utf8::decode(s, pos))) return false;
  }
  return true;
}

std::string nfc(std::string_view s) {
  if (nfc_quick_check(s)) return std::string(s);
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) decompose(utf8::decode(s, pos), cps);

  std::vector<uint8_t> classes(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) classes[i] = ccc(cps[i]);
  // Canonical ordering: stable sort of every run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (classes[i] == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && classes[j] != 0) ++j;
    std::vector<std::pair<uint8_t, char32_t>> run;
    for (size_t k = i; k < j; ++k) run.emplace_back(classes[k], cps[k]);
    std::stable_sort(run.begin(), run.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    for (size_t k = i; k < j; ++k) std::tie(classes[k], cps[k]) = run[k - i];
    i = j;
  }

  // Canonical composition: each character combines with the last starter unless a character in between has a
  // combining class >= its own (blocked), or the last character kept is a starter that is not adjacent.
  std::vector<char32_t> out;
  std::vector<uint8_t> out_classes;
  out.reserve(cps.size());
  std::ptrdiff_t starter = -1;  // index in `out` of the last starter
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t c = cps[i];
    const uint8_t cc = classes[i];
    if (starter >= 0) {
      const uint8_t last_class = out_classes.back();
      const bool adjacent = static_cast<size_t>(starter) == out.size() - 1;
      const bool blocked = !adjacent && (last_class == 0 || last_class >= cc);
      if (!blocked) {
        if (const char32_t composite = compose(out[starter], c); composite != 0) {
          out[starter] = composite;
          continue;
        }
      }
    }
    out.push_back(c);
    out_classes.push_back(cc);
    if (cc == 0) starter = static_cast<std::ptrdiff_t>(out.size()) - 1;
  }
  std::string result;
  result.reserve(s.size());
  for (char32_t c : out) utf8::append(result, c);
  return result;
}

}  // namespace tandem::tokenizer
