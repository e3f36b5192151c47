// Translation of the Oniguruma regex syntax used in tokenizer.json (Hugging Face `tokenizers` compiles Split and
// ByteLevel patterns with Oniguruma, Unicode 16 tables) into an equivalent PCRE2 pattern (Debian's PCRE2 10.42,
// Unicode 14 tables, compiled with PCRE2_UTF | PCRE2_UCP).
#pragma once

#include <string>
#include <string_view>

namespace tandem::tokenizer {

/// The PCRE2 pattern that matches exactly what Oniguruma matches for `pattern`:
///   * \s is Oniguruma's Unicode White_Space set (PCRE2's \s differs, e.g. on U+0085);
///   * \w, \d, \h and their negations get Oniguruma's meanings;
///   * \p{X} for general categories also covers the characters Unicode 15-16 assigned to X;
///   * \uHHHH becomes \x{HHHH}.
/// Constructs whose meaning differs and that tokenizers in use do not need (^, $, \b, POSIX brackets, nested
/// classes, inline options other than i, non-category properties) are rejected: throws tandem::Error naming
/// `where` and the construct.
std::string onig_to_pcre2(std::string_view pattern, std::string_view where);

/// A PCRE2 pattern matching `text` literally (Split's {"String": ...} pattern).
std::string pcre2_literal(std::string_view text);

}  // namespace tandem::tokenizer
