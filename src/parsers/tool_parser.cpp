#include "parsers/tool_parser.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "parsers/tool_parser_formats.h"

namespace tandem::parsers {

const std::vector<std::string>& tool_parser_names() {
  static const std::vector<std::string> kNames = {"glm45", "glm47", "hermes", "qwen3_coder", "deepseekv3"};
  return kNames;
}

std::unique_ptr<ToolParser> make_tool_parser(std::string_view name, ToolParserOptions options) {
  if (name == "glm45" || name == "glm47") return make_glm_tool_parser(std::move(options));
  if (name == "hermes") return make_hermes_tool_parser(std::move(options));
  if (name == "qwen3_coder") return make_qwen3_coder_tool_parser(std::move(options));
  if (name == "deepseekv3") return make_deepseekv3_tool_parser(std::move(options));
  fail("unknown tool-call parser '{}' (known: {})", name, fmt::join(tool_parser_names(), ", "));
}

}  // namespace tandem::parsers
