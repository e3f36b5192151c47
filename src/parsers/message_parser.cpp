#include "parsers/message_parser.h"

namespace tandem::parsers {

MessageParser::MessageParser(MessageParserOptions options) {
  std::vector<std::string> tool_tags;
  if (!options.tool_parser.empty()) {
    tools_ = make_tool_parser(options.tool_parser,
                              {.schemas = std::move(options.schemas), .call_id_seed = std::move(options.call_id_seed)});
    tool_tags = tools_->start_tags();
  }
  if (!options.reasoning_parser.empty()) {
    reasoning_ = std::make_unique<ReasoningParser>(
        options.reasoning_parser,
        ReasoningOptions{.starts_in_reasoning = options.starts_in_reasoning, .ends_at = std::move(tool_tags)});
  }
}

std::vector<ParseEvent> MessageParser::route(std::vector<ParseEvent> events, bool finishing) {
  if (!tools_) return coalesce(std::move(events));
  std::vector<ParseEvent> out;
  for (ParseEvent& e : events) {
    if (e.kind != EventKind::kContent) {
      out.push_back(std::move(e));
      continue;
    }
    for (ParseEvent& t : tools_->push(e.text)) out.push_back(std::move(t));
  }
  if (finishing) {
    for (ParseEvent& t : tools_->finish()) out.push_back(std::move(t));
  }
  return coalesce(std::move(out));
}

std::vector<ParseEvent> MessageParser::push(std::string_view delta) {
  if (reasoning_) return route(reasoning_->push(delta), false);
  return route({{.kind = EventKind::kContent, .text = std::string(delta)}}, false);
}

std::vector<ParseEvent> MessageParser::finish() {
  return route(reasoning_ ? reasoning_->finish() : std::vector<ParseEvent>{}, true);
}

ParsedMessage parse_message(std::string_view text, MessageParserOptions options) {
  MessageParser parser(std::move(options));
  ParsedMessage message;
  apply_events(message, parser.push(text));
  apply_events(message, parser.finish());
  return message;
}

}  // namespace tandem::parsers
