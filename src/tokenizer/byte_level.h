// GPT-2's byte-level alphabet: every byte is written as one printable Unicode character so that BPE vocabularies
// can be stored as text ("Ġthe" is " the"). Printable Latin-1 bytes map to themselves; the other 68 bytes map to
// U+0100.. in byte order (HF tokenizers pre_tokenizers/byte_level.rs, bytes_char).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::tokenizer::byte_level {

/// The character that stands for byte `b`.
char32_t byte_to_char(uint8_t b);

/// The byte that character `c` stands for, or nullopt when `c` is not in the alphabet.
std::optional<uint8_t> char_to_byte(char32_t c);

/// `bytes` written in the byte-level alphabet (UTF-8).
std::string encode(std::string_view bytes);

/// The bytes a token string stands for, as HF's ByteLevel decoder reads it: if every character of `token` (valid
/// UTF-8) is in the alphabet, the bytes they stand for; otherwise nullopt (the decoder then keeps the token's own
/// UTF-8 bytes, which is how added tokens such as "<｜User｜>" come out).
std::optional<std::string> decode(std::string_view token);

}  // namespace tandem::tokenizer::byte_level
