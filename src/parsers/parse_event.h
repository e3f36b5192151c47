// What the output parsers produce: a stream of events over the generated text (content, reasoning, tool calls
// with their argument JSON in fragments) and the chat message those events add up to.
//
// The server forwards events as OpenAI stream deltas (`delta.content`, `delta.reasoning_content`,
// `delta.tool_calls[i]`) and, for a non-streamed response, applies them all to one ParsedMessage. Both views come
// from the same events, so a streamed and a non-streamed response carry the same message.
#pragma once

#include <string>
#include <vector>

namespace tandem::parsers {

enum class EventKind {
  kContent,        // `text`: assistant content
  kReasoning,      // `text`: reasoning content (inside <think>...</think>)
  kToolCallBegin,  // `tool_index`, `id`, `name`: a new call; its name is complete
  kToolCallArgs,   // `tool_index`, `text`: the next fragment of the call's arguments JSON
  kToolCallEnd,    // `tool_index`: the call's arguments are complete
};

struct ParseEvent {
  EventKind kind = EventKind::kContent;
  std::string text;     // kContent, kReasoning, kToolCallArgs
  int tool_index = -1;  // tool events: 0, 1, ... in the order the calls appear
  std::string id;       // kToolCallBegin
  std::string name;     // kToolCallBegin

  bool operator==(const ParseEvent&) const = default;
};

/// One tool call of the final message, as OpenAI's `message.tool_calls[i].function` reports it.
struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // a JSON object as text: the concatenation of the call's kToolCallArgs fragments

  bool operator==(const ToolCall&) const = default;
};

/// The final assistant message.
struct ParsedMessage {
  std::string content;
  std::string reasoning_content;
  std::vector<ToolCall> tool_calls;

  bool operator==(const ParsedMessage&) const = default;
};

/// Applies events to a message in order. Throws tandem::Error on an event stream that breaks the contract of
/// the parsers (arguments or an end for a call that has not begun, a call index out of order).
void apply_event(ParsedMessage& message, const ParseEvent& event);
void apply_events(ParsedMessage& message, const std::vector<ParseEvent>& events);

/// Merges neighbouring events of the same kind (content with content, reasoning with reasoning, arguments of
/// the same call), so that one push() turns into as few stream deltas as possible. Applying the result gives
/// the same message as applying `events`.
[[nodiscard]] std::vector<ParseEvent> coalesce(std::vector<ParseEvent> events);

}  // namespace tandem::parsers
