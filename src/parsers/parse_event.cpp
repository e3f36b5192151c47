#include "parsers/parse_event.h"

#include "core/error.h"

namespace tandem::parsers {

void apply_event(ParsedMessage& message, const ParseEvent& event) {
  auto& calls = message.tool_calls;
  switch (event.kind) {
    case EventKind::kContent:
      message.content += event.text;
      return;
    case EventKind::kReasoning:
      message.reasoning_content += event.text;
      return;
    case EventKind::kToolCallBegin:
      TANDEM_CHECK(event.tool_index == static_cast<int>(calls.size()), "tool call {} begins, expected index {}",
                   event.tool_index, calls.size());
      calls.push_back({.id = event.id, .name = event.name});
      return;
    case EventKind::kToolCallArgs:
    case EventKind::kToolCallEnd:
      TANDEM_CHECK(event.tool_index >= 0 && event.tool_index < static_cast<int>(calls.size()),
                   "event for tool call {} that has not begun ({} calls)", event.tool_index, calls.size());
      if (event.kind == EventKind::kToolCallArgs) calls[event.tool_index].arguments += event.text;
      return;
  }
}

void apply_events(ParsedMessage& message, const std::vector<ParseEvent>& events) {
  for (const ParseEvent& e : events) apply_event(message, e);
}

std::vector<ParseEvent> coalesce(std::vector<ParseEvent> events) {
  std::vector<ParseEvent> out;
  out.reserve(events.size());
  for (ParseEvent& e : events) {
    const bool textual = e.kind == EventKind::kContent || e.kind == EventKind::kReasoning ||
                         e.kind == EventKind::kToolCallArgs;
    if (textual && !out.empty() && out.back().kind == e.kind && out.back().tool_index == e.tool_index) {
      out.back().text += e.text;
    } else if (!(textual && e.text.empty())) {
      out.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace tandem::parsers
