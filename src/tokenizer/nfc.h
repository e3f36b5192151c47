// Unicode Normalization Form C, as Hugging Face's NFC normalizer computes it (its tables lack characters newer
// than about Unicode 9.0; tools/unicode/gen_tables.py removes them from ours so both agree).
#pragma once

#include <string>
#include <string_view>

namespace tandem::tokenizer {

/// True when `s` (valid UTF-8) contains no character that NFC could change; such strings are already in NFC.
bool nfc_quick_check(std::string_view s);

/// NFC of `s` (valid UTF-8).
std::string nfc(std::string_view s);

}  // namespace tandem::tokenizer
