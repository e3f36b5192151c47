// The assistant message of one choice, from its generated text: reasoning parser first (it takes
// <think>...</think> off the front), tool-call parser on the content it passes on. This is what the server
// holds per choice: push() each detokenized delta (one token or a whole accepted MTP run) and forward the
// events; finish() at the end of generation. parse_message() is the non-streamed path and, by construction,
// the message the streamed events add up to.
//
// The text must still contain the format's tags. They are added tokens that are not special in the Qwen3 and
// DeepSeek-V3 tokenizers, so decoding with skip_special_tokens keeps them; a tokenizer that marks them special
// must be decoded without skipping them.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/parse_event.h"
#include "parsers/reasoning_parser.h"
#include "parsers/tool_parser.h"

namespace tandem::parsers {

struct MessageParserOptions {
  std::string tool_parser;       // a tool_parser_names() entry, or "" (no tool calls: content passes through)
  std::string reasoning_parser;  // a reasoning_parser_names() entry, or "" (no reasoning)
  bool starts_in_reasoning = false;  // prompt_opens_reasoning(rendered prompt); ignored without reasoning parser
  ToolSchemas schemas;               // ToolSchemas::from_openai_tools(request "tools")
  std::string call_id_seed;          // unique per choice; see tool_call_id()
};

class MessageParser {
 public:
  /// Throws tandem::Error for an unknown parser name.
  explicit MessageParser(MessageParserOptions options);

  /// Events for the next delta of generated text (whole UTF-8 characters, any number of them), coalesced.
  [[nodiscard]] std::vector<ParseEvent> push(std::string_view delta);
  /// End of generation (stop, eos or max_tokens); no push() after it.
  [[nodiscard]] std::vector<ParseEvent> finish();

 private:
  std::vector<ParseEvent> route(std::vector<ParseEvent> events, bool finishing);

  std::unique_ptr<ReasoningParser> reasoning_;
  std::unique_ptr<ToolParser> tools_;
};

/// Non-streamed parse: one push() of `text`, then finish(), applied to an empty message.
ParsedMessage parse_message(std::string_view text, MessageParserOptions options);

}  // namespace tandem::parsers
