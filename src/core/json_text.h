// Parsing JSON text that comes from outside (checkpoint headers, config.json, tokenizer files, indexes) with
// a bound on nesting. nlohmann's parser itself is iterative, but copying, dumping, comparing or walking a
// value recurses once per level, so a value nested 10^5 deep overflows the stack long after it was "parsed".
// The depth is checked on the text first (one linear pass), so nothing deep is ever built.
//
// core does not link nlohmann_json: parse_json_text is a template over the JSON type, instantiated by the
// libraries that do (loader, tokenizer, models, quant, template).
#pragma once

#include <string_view>

#include "core/error.h"

namespace tandem {

/// No real config, header, index or tokenizer file nests beyond a handful of levels; Python's json module
/// stops near 1000, so 512 leaves room for anything legitimate.
inline constexpr int kMaxJsonDepth = 512;

/// The deepest nesting of arrays and objects in `text` (brackets inside strings do not count). Defined for
/// any text: for invalid JSON it is the depth a parser would have reached.
int json_nesting_depth(std::string_view text);

/// Throws tandem::Error "<source>: JSON nested deeper than <max_depth> levels" when `text` nests deeper.
void check_json_depth(std::string_view text, std::string_view source, int max_depth = kMaxJsonDepth);

/// Parses `text` as Json (nlohmann::json or nlohmann::ordered_json) after check_json_depth. Throws
/// tandem::Error naming `source` for too deep or invalid JSON ("<source> is not valid JSON: ...").
template <class Json>
Json parse_json_text(std::string_view text, std::string_view source, int max_depth = kMaxJsonDepth) {
  check_json_depth(text, source, max_depth);
  try {
    return Json::parse(text);
  } catch (const typename Json::exception& e) {
    fail("{} is not valid JSON: {}", source, e.what());
  }
}

}  // namespace tandem
