// The assistant message of one chat choice, from its generated text. The output parsers (src/parsers/,
// message_parser.h) split the text into content, reasoning and tool calls; this class writes what they
// produce in OpenAI's shapes: the `delta` objects of a stream and the `message` of a non-streamed response.
// Both come from the same parse events, so a stream adds up to the non-streamed message whatever the sizes of
// the text pieces (one token per step, or several under speculative decoding): the parsers' chunking
// invariance (tests/unit/parsers_chunking_test.cpp) carries over to the API
// (tests/unit/server_chat_output_test.cpp).
//
// Stream deltas, one per parse event, in order:
//   {"content": text}   {"reasoning_content": text}
//   {"tool_calls": [{"index": i, "id": "call_...", "type": "function", "function": {"name": n, "arguments":
//   ""}}]}
//   {"tool_calls": [{"index": i, "function": {"arguments": fragment}}]}   (the fragments of a call,
//   concatenated,
//                                                                           are its arguments: a JSON object)
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/message_parser.h"

namespace tandem::server {

struct ChatOutputOptions {
  std::string tool_parser;       // "": tool calls are not parsed (no tools, tool_choice "none", or no parser)
  std::string reasoning_parser;  // "": no reasoning_content
  bool starts_in_reasoning = false;  // parsers::prompt_opens_reasoning(rendered prompt)
  parsers::ToolSchemas schemas;      // the request's tools: argument types
};

/// The parse of one choice's text, shared by the API shapes that present it (ChatChoiceOutput here, OpenAI's;
/// AnthropicContent in anthropic_output.h): the output parsers' events for each piece of text, and the message
/// they add up to. One class, so every API parses a streamed and a non-streamed choice the same way.
class ChoiceParse {
 public:
  /// `call_id_seed` is unique to the choice (response id and choice index): it names the choice's tool calls.
  ChoiceParse(const ChatOutputOptions& options, std::string call_id_seed);

  /// The parse events of the next piece of the choice's text (whole UTF-8 characters, any number), already
  /// applied to message(). `last`: the generation ended with this piece; held-back text is flushed and a call
  /// cut off by max_tokens is closed. A push after the last one returns nothing.
  [[nodiscard]] std::vector<parsers::ParseEvent> push(std::string_view text, bool last);
  const parsers::ParsedMessage& message() const { return message_; }
  bool ended() const { return ended_; }

 private:
  parsers::MessageParser parser_;
  parsers::ParsedMessage message_;
  bool ended_ = false;
};

class ChatChoiceOutput {
 public:
  /// `call_id_seed` is unique to the choice (response id and choice index): it names the choice's tool calls.
  ChatChoiceOutput(const ChatOutputOptions& options, std::string call_id_seed);

  /// The stream deltas for the next piece of the choice's text (whole UTF-8 characters, any number). `last`:
  /// the generation ended with this piece; held-back text is flushed and a call cut off by max_tokens is
  /// closed. A push after the last one returns nothing.
  [[nodiscard]] std::vector<nlohmann::json> push(std::string_view text, bool last);

  /// The message the deltas so far add up to: {"role": "assistant", "content": text (null when the choice
  /// only called tools), "reasoning_content"?: text, "tool_calls"?: [{"id", "type", "function": {"name",
  /// "arguments"}}]}; the optional keys only when non-empty.
  nlohmann::json message() const;

  /// OpenAI's finish_reason for the engine's `reason`: "tool_calls" when the choice stopped after calling a
  /// tool.
  std::string finish_reason(const std::string& reason) const;
  bool called_tools() const { return !parse_.message().tool_calls.empty(); }

 private:
  ChoiceParse parse_;
};

/// The delta of one parse event; null for an event that has none (the end of a call).
nlohmann::json stream_delta(const parsers::ParseEvent& event);

}  // namespace tandem::server
