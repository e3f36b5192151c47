// Unicode character properties and whole-string UTF-8 helpers with CPython's semantics, for the chat-template
// interpreter (one code point at a time: core/utf8.h).
// Properties and case mappings come from tables generated from /usr/bin/python3 itself
// (tools/gen_template_unicode_tables.py), so str.upper(), repr() and strip() match the reference renderer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tandem::tmpl::unicode {

/// Decodes a whole UTF-8 string into code points with utf8::decode: invalid bytes become U+FFFD one byte at a
/// time (templates and contexts arrive as valid UTF-8; this only keeps bad input safe).
std::u32string to_u32(std::string_view text);

/// Encodes code points as UTF-8.
std::string to_utf8(std::u32string_view text);

/// Number of code points (Python len()) of a UTF-8 string.
size_t length(std::string_view text);

/// True when every byte is ASCII (allows byte-indexed fast paths).
bool is_ascii(std::string_view text);

// Per-character predicates, each equal to the corresponding Python str method on a 1-character string.
bool is_space(char32_t cp);      // str.isspace
bool is_printable(char32_t cp);  // str.isprintable
bool is_alpha(char32_t cp);      // str.isalpha
bool is_digit(char32_t cp);      // str.isdigit
bool is_decimal(char32_t cp);    // str.isdecimal
bool is_numeric(char32_t cp);    // str.isnumeric
bool is_lower(char32_t cp);      // str.islower
bool is_upper(char32_t cp);      // str.isupper
bool is_title(char32_t cp);      // titlecase letter (category Lt)
bool is_cased(char32_t cp);      // lower, upper or titlecase letter
bool is_alnum(char32_t cp);      // str.isalnum

// Full case mappings (may expand: "ß".upper() == "SS"), appended to `out`.
void append_lower(std::u32string& out, char32_t cp);
void append_upper(std::u32string& out, char32_t cp);
void append_title(std::u32string& out, char32_t cp);

/// Unicode version of the tables (the reference Python's unicodedata.unidata_version).
const char* tables_version();

}  // namespace tandem::tmpl::unicode
