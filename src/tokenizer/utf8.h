// UTF-8 helpers shared by the tokenizer: decoding one code point, validation, and the lossy decoding that Hugging
// Face's decoders apply (Rust's String::from_utf8_lossy, the same policy as Python's errors='replace').
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::tokenizer::utf8 {

inline constexpr char32_t kReplacementChar = 0xFFFD;

/// Appends the UTF-8 encoding of `cp` (a Unicode scalar value) to `out`.
void append(std::string& out, char32_t cp);

/// Length in bytes of the UTF-8 sequence starting with lead byte `b` (1 for ASCII and for invalid lead bytes).
inline size_t sequence_length(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xF0) return 4;
  if (b >= 0xE0) return 3;
  if (b >= 0xC0) return 2;
  return 1;
}

/// Decodes the code point at `s[pos]`, which must start a valid UTF-8 sequence (checked input), and advances
/// `pos` past it.
inline char32_t decode_valid(std::string_view s, size_t& pos) {
  const auto b0 = static_cast<uint8_t>(s[pos]);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  const size_t n = sequence_length(b0);
  char32_t cp = b0 & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<uint8_t>(s[pos + i]) & 0x3F);
  pos += n;
  return cp;
}

/// Byte offset of the first invalid UTF-8 sequence in `s` (overlong forms, surrogates and code points above
/// U+10FFFF are invalid), or nullopt when all of `s` is valid.
std::optional<size_t> first_invalid(std::string_view s);

/// Result of looking at the bytes at one position of a possibly invalid UTF-8 string.
struct Step {
  enum class Kind { kValid, kInvalid, kIncomplete } kind;
  /// kValid: bytes of the character; kInvalid: bytes replaced by one U+FFFD (the maximal subpart of an
  /// ill-formed sequence, at least 1); kIncomplete: bytes up to the end of the input, which a continuation could
  /// still turn into a valid character.
  size_t length;
};

/// Classifies the bytes starting at `s[pos]` (pos < s.size()) the way from_utf8_lossy does.
Step step(std::string_view s, size_t pos);

/// `bytes` decoded as UTF-8 with every maximal ill-formed subsequence, and an incomplete sequence at the end,
/// replaced by U+FFFD (Rust String::from_utf8_lossy; Python bytes.decode('utf-8', 'replace')).
std::string decode_lossy(std::string_view bytes);

/// Length of the longest suffix of `bytes` that is an incomplete but so far valid UTF-8 sequence (0 to 3), i.e.
/// the bytes a streaming decoder must hold back because later bytes may complete them.
size_t incomplete_suffix_length(std::string_view bytes);

}  // namespace tandem::tokenizer::utf8
