// json.dumps with Python's exact output, for the `tojson` filter Hugging Face installs:
// json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) by default, i.e. no HTML
// escaping and key order preserved, unlike Jinja's built-in tojson.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "template/value.h"

namespace tandem::tmpl {

struct JsonDumpOptions {
  bool ensure_ascii = false;
  /// nullopt: single line. Otherwise the indent unit ("" for indent=0, "  " for indent=2).
  std::optional<std::string> indent;
  /// nullopt: Python's default for the indent mode ((", ", ": ") or (",", ": ")).
  std::optional<std::pair<std::string, std::string>> separators;
  bool sort_keys = false;
  /// The encoding stops with RenderLimitError once the text passes this many bytes
  /// (TemplateLimits::max_output_bytes in a render): an indent of a million spaces repeats on every line.
  size_t max_bytes = SIZE_MAX;
};

/// Throws TypeError "Object of type Undefined is not JSON serializable" for values JSON cannot hold.
std::string json_dumps(const Value& v, const JsonDumpOptions& options);

}  // namespace tandem::tmpl
