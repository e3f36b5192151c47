// Which output parsers the server runs on chat completions: the tool-call format and the reasoning format of
// the served checkpoint (src/parsers/). Chosen once at start-up from `--tool-call-parser` /
// `--reasoning-parser` (SGLang's and vLLM's names) or, when a flag is not given, from the checkpoint's chat
// template and tokenizer (parsers::detect_parsers); logged, and shown in /get_server_info.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tandem::server {

struct OutputParsers {
  std::string tool_parser;       // a parsers::tool_parser_names() entry, or "" (tool calls are not parsed)
  std::string reasoning_parser;  // a parsers::reasoning_parser_names() entry, or "" (no reasoning_content)
  std::string reason;            // how both were chosen, in one line
  /// A tag of the chosen formats is a special token of this tokenizer: outputs that are parsed are decoded
  /// without skipping special tokens, or the tags would never reach the parser.
  bool keep_special_tokens = false;
};

/// The values the flags accept: the parser names, and "none" (no parser, no detection). "" (flag not given):
/// detect.
std::vector<std::string> tool_parser_flag_values();
std::vector<std::string> reasoning_parser_flag_values();

/// Resolves the flags against the tokenizer. Throws tandem::Error for a value not in the lists above.
OutputParsers choose_output_parsers(std::string_view tool_flag, std::string_view reasoning_flag,
                                    const tokenizer::Tokenizer& tok);

}  // namespace tandem::server
