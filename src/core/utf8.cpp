#include "core/utf8.h"

namespace tandem::utf8 {

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

namespace {

// Range of the second byte allowed after each lead byte (Unicode Table 3-7, "well-formed UTF-8 byte
// sequences"); all later bytes are 80..BF. Lead bytes with no valid sequence get an empty range.
struct SecondByteRange {
  uint8_t lo, hi;
};

SecondByteRange second_byte_range(uint8_t lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return {0x80, 0xBF};
  if (lead == 0xE0) return {0xA0, 0xBF};
  if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) return {0x80, 0xBF};
  if (lead == 0xED) return {0x80, 0x9F};  // excludes the surrogates D800..DFFF
  if (lead == 0xF0) return {0x90, 0xBF};
  if (lead >= 0xF1 && lead <= 0xF3) return {0x80, 0xBF};
  if (lead == 0xF4) return {0x80, 0x8F};  // nothing above U+10FFFF
  return {1, 0};
}

}  // namespace

Step step(std::string_view s, size_t pos) {
  const auto lead = static_cast<uint8_t>(s[pos]);
  if (lead < 0x80) return {Step::Kind::kValid, 1};
  const SecondByteRange r = second_byte_range(lead);
  if (r.lo > r.hi) return {Step::Kind::kInvalid, 1};
  const size_t need = sequence_length(lead);
  for (size_t i = 1; i < need; ++i) {
    if (pos + i >= s.size()) return {Step::Kind::kIncomplete, i};
    const auto b = static_cast<uint8_t>(s[pos + i]);
    const bool ok = i == 1 ? (b >= r.lo && b <= r.hi) : (b >= 0x80 && b <= 0xBF);
    // The maximal subpart: the bytes that still formed a valid prefix are replaced together.
    if (!ok) return {Step::Kind::kInvalid, i};
  }
  return {Step::Kind::kValid, need};
}

std::optional<size_t> first_invalid(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    // Fast path over ASCII, eight bytes at a time.
    while (pos + 8 <= s.size()) {
      uint64_t w;
      __builtin_memcpy(&w, s.data() + pos, 8);
      if (w & 0x8080808080808080ULL) break;
      pos += 8;
    }
    if (pos >= s.size()) break;
    const Step st = step(s, pos);
    if (st.kind != Step::Kind::kValid) return pos;
    pos += st.length;
  }
  return std::nullopt;
}

std::string decode_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const Step st = step(bytes, pos);
    if (st.kind == Step::Kind::kValid) {
      out.append(bytes.substr(pos, st.length));
    } else {
      append(out, kReplacementChar);
    }
    pos += st.length;
  }
  return out;
}

size_t incomplete_suffix_length(std::string_view bytes) {
  // An incomplete sequence is at most 3 bytes, so only the last 3 positions can start one.
  const size_t start = bytes.size() > 3 ? bytes.size() - 3 : 0;
  for (size_t pos = start; pos < bytes.size(); ++pos) {
    if (sequence_length(static_cast<uint8_t>(bytes[pos])) == 1 && static_cast<uint8_t>(bytes[pos]) >= 0x80) {
      continue;  // a continuation or invalid byte cannot start a sequence
    }
    const Step st = step(bytes, pos);
    if (st.kind == Step::Kind::kIncomplete && pos + st.length == bytes.size()) return bytes.size() - pos;
  }
  return 0;
}

}  // namespace tandem::utf8
