// The `tools` and `tool_choice` of a chat request: validated (every mistake a 400 naming the field), kept in
// the client's key order for the chat template, and turned into what the tool-call parser needs (the argument
// types of each function).
//
// tool_choice: "auto" (the default) parses tool calls out of the output; "none" hides the tools from the
// template and parses nothing (the output is plain content). "required" and a named function would need
// decoding constrained to the tool-call syntax, which this server does not implement: they are refused with a
// 400 rather than hoped for.
#pragma once

#include <nlohmann/json.hpp>

#include "parsers/tool_schema.h"

namespace tandem::server {

struct ChatTools {
  nlohmann::ordered_json tools;  // what the template sees: the request's list as sent, or null
  bool parse_calls = false;      // tool calls in the output are parsed (tools given and tool_choice "auto")
  parsers::ToolSchemas schemas;
};

/// `tools` and `tool_choice` as sent (nullptr: absent or null). 400 for a `tools` that is not a list of
/// {"type": "function", "function": {"name", "description"?, "parameters"?: object}} with distinct names the
/// tool-call parsers can read back, and for a tool_choice that is not "none", "auto", "required" or
/// {"type": "function", "function": {"name": <one of the tools>}}; the last two are then refused as
/// unsupported.
ChatTools read_chat_tools(const nlohmann::ordered_json* tools, const nlohmann::ordered_json* tool_choice);

}  // namespace tandem::server
