// The factories of the tool-call formats (not a public header: use make_tool_parser).
#pragma once

#include <memory>

#include "parsers/tool_parser_base.h"

namespace tandem::parsers {

std::unique_ptr<ToolParser> make_glm_tool_parser(ToolParserOptions options);          // glm45, glm47
std::unique_ptr<ToolParser> make_hermes_tool_parser(ToolParserOptions options);       // hermes
std::unique_ptr<ToolParser> make_qwen3_coder_tool_parser(ToolParserOptions options);  // qwen3_coder
std::unique_ptr<ToolParser> make_deepseekv3_tool_parser(ToolParserOptions options);   // deepseekv3

}  // namespace tandem::parsers
