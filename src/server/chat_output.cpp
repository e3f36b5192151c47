#include "server/chat_output.h"

namespace tandem::server {

using parsers::EventKind;

nlohmann::json stream_delta(const parsers::ParseEvent& e) {
  switch (e.kind) {
    case EventKind::kContent:
      return {{"content", e.text}};
    case EventKind::kReasoning:
      return {{"reasoning_content", e.text}};
    case EventKind::kToolCallBegin:
      // OpenAI's first chunk of a call: its index, id, type and whole name, with empty arguments.
      return {{"tool_calls", nlohmann::json::array({{{"index", e.tool_index},
                                                     {"id", e.id},
                                                     {"type", "function"},
                                                     {"function", {{"name", e.name}, {"arguments", ""}}}}})}};
    case EventKind::kToolCallArgs:
      return {{"tool_calls",
               nlohmann::json::array({{{"index", e.tool_index}, {"function", {{"arguments", e.text}}}}})}};
    case EventKind::kToolCallEnd:
      return nullptr;
  }
  return nullptr;
}

ChoiceParse::ChoiceParse(const ChatOutputOptions& options, std::string call_id_seed)
    : parser_({.tool_parser = options.tool_parser,
               .reasoning_parser = options.reasoning_parser,
               .starts_in_reasoning = options.starts_in_reasoning,
               .schemas = options.schemas,
               .call_id_seed = std::move(call_id_seed)}) {}

std::vector<parsers::ParseEvent> ChoiceParse::push(std::string_view text, bool last) {
  if (ended_) return {};
  std::vector<parsers::ParseEvent> events = parser_.push(text);
  if (last) {
    ended_ = true;
    for (parsers::ParseEvent& e : parser_.finish()) events.push_back(std::move(e));
    events = parsers::coalesce(std::move(events));
  }
  parsers::apply_events(message_, events);
  return events;
}

ChatChoiceOutput::ChatChoiceOutput(const ChatOutputOptions& options, std::string call_id_seed)
    : parse_(options, std::move(call_id_seed)) {}

std::vector<nlohmann::json> ChatChoiceOutput::push(std::string_view text, bool last) {
  std::vector<nlohmann::json> deltas;
  for (const parsers::ParseEvent& e : parse_.push(text, last)) {
    if (nlohmann::json d = stream_delta(e); !d.is_null()) deltas.push_back(std::move(d));
  }
  return deltas;
}

nlohmann::json ChatChoiceOutput::message() const {
  const parsers::ParsedMessage& parsed = parse_.message();
  nlohmann::json m = {{"role", "assistant"}};
  m["content"] =
      parsed.content.empty() && called_tools() ? nlohmann::json() : nlohmann::json(parsed.content);
  if (!parsed.reasoning_content.empty()) m["reasoning_content"] = parsed.reasoning_content;
  if (called_tools()) {
    nlohmann::json calls = nlohmann::json::array();
    for (const parsers::ToolCall& c : parsed.tool_calls)
      calls.push_back(
          {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    m["tool_calls"] = std::move(calls);
  }
  return m;
}

std::string ChatChoiceOutput::finish_reason(const std::string& reason) const {
  return reason == "stop" && called_tools() ? "tool_calls" : reason;
}

}  // namespace tandem::server
