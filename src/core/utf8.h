// The one UTF-8 codec: encoding a code point, decoding one code point, and the validation and lossy decoding
// that Hugging Face's decoders apply. Two decoding policies, for two kinds of input:
//  - decode(): one code point of text that is valid in practice (a checked tokenizer input or vocabulary
//    token, a chat template or its JSON context). Bad bytes never read past the end and come out as U+FFFD
//    one byte at a time; forms that are well-shaped but not well-formed (overlong, surrogates, above
//    U+10FFFF) decode arithmetically, as a lone surrogate from JSON "\ud800" does in the template
//    interpreter.
//  - step() / decode_lossy(): untrusted bytes (detokenized output), checked against Unicode Table 3-7 and
//    replaced by maximal ill-formed subpart, the policy of Rust's String::from_utf8_lossy and Python's
//    bytes.decode('utf-8', 'replace').
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::utf8 {

inline constexpr char32_t kReplacementChar = 0xFFFD;

/// Appends the UTF-8 encoding of `cp` to `out`: 1 to 4 bytes by magnitude. `cp` is not checked (a surrogate
/// encodes as 3 bytes); callers pass Unicode scalar values.
void append(std::string& out, char32_t cp);

/// Length in bytes of the UTF-8 sequence starting with lead byte `b`, from its high bits alone: 1 for ASCII
/// and for continuation bytes 80..BF, 2 for C0..DF, 3 for E0..EF, 4 for F0..FF (the caller checks validity).
inline size_t sequence_length(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xF0) return 4;
  if (b >= 0xE0) return 3;
  if (b >= 0xC0) return 2;
  return 1;
}

/// Decodes the code point starting at `s[pos]` (pos < s.size()) and advances `pos` past it.
/// A lead byte 110xxxxx / 1110xxxx / 11110xxx followed by 1 / 2 / 3 continuation bytes 10xxxxxx decodes to
/// the value those bits spell, overlong forms, surrogates and values up to 0x1FFFFF included. Anything else
/// (a continuation or F8..FF byte in lead position, a sequence cut off by the end of `s`, a lead byte
/// followed by a non-continuation byte) returns U+FFFD and advances `pos` by exactly one byte, so decoding
/// resumes at the next byte. On valid UTF-8 this is the standard decoding.
inline char32_t decode(std::string_view s, size_t& pos) {
  const auto b0 = static_cast<uint8_t>(s[pos]);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  const size_t n = sequence_length(b0);
  if (n == 1 || b0 >= 0xF8 || pos + n > s.size()) {
    ++pos;
    return kReplacementChar;
  }
  char32_t cp = b0 & (0x7F >> n);
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<uint8_t>(s[pos + i]);
    if ((b & 0xC0) != 0x80) {
      ++pos;
      return kReplacementChar;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  pos += n;
  return cp;
}

/// Byte offset of the first invalid UTF-8 sequence in `s` (overlong forms, surrogates and code points above
/// U+10FFFF are invalid, as is a sequence cut off by the end), or nullopt when all of `s` is valid.
std::optional<size_t> first_invalid(std::string_view s);

/// Result of looking at the bytes at one position of a possibly invalid UTF-8 string.
struct Step {
  enum class Kind { kValid, kInvalid, kIncomplete } kind;
  /// kValid: bytes of the character; kInvalid: bytes replaced by one U+FFFD (the maximal subpart of an
  /// ill-formed sequence, at least 1); kIncomplete: bytes up to the end of the input, which a continuation
  /// could still turn into a valid character.
  size_t length;
};

/// Classifies the bytes starting at `s[pos]` (pos < s.size()) the way from_utf8_lossy does.
Step step(std::string_view s, size_t pos);

/// `bytes` decoded as UTF-8 with every maximal ill-formed subsequence, and an incomplete sequence at the end,
/// replaced by U+FFFD (Rust String::from_utf8_lossy; Python bytes.decode('utf-8', 'replace')).
std::string decode_lossy(std::string_view bytes);

/// Length of the longest suffix of `bytes` that is an incomplete but so far valid UTF-8 sequence (0 to 3),
/// i.e. the bytes a streaming decoder must hold back because later bytes may complete them.
size_t incomplete_suffix_length(std::string_view bytes);

}  // namespace tandem::utf8
