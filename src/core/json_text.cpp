#include "core/json_text.h"

#include <algorithm>

namespace tandem {

int json_nesting_depth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        deepest = std::max(deepest, ++depth);
        break;
      case ']':
      case '}':
        depth = std::max(depth - 1, 0);  // unbalanced text is the parser's error to report
        break;
      default:
        break;
    }
  }
  return deepest;
}

void check_json_depth(std::string_view text, std::string_view source, int max_depth) {
  if (json_nesting_depth(text) > max_depth)
    fail("{}: JSON nested deeper than {} levels; refusing to parse it", source, max_depth);
}

}  // namespace tandem
