#include "server/anthropic_output.h"

#include "core/error.h"
#include "core/json_text.h"

namespace tandem::server {

using OJson = nlohmann::ordered_json;
using parsers::EventKind;

std::string anthropic_tool_id(std::string_view call_id) {
  constexpr std::string_view kCall = "call_";
  if (call_id.starts_with(kCall)) call_id.remove_prefix(kCall.size());
  return "toolu_" + std::string(call_id);
}

AnthropicContent::AnthropicContent(const ChatOutputOptions& options, std::string call_id_seed)
    : parse_(options, std::move(call_id_seed)) {}

void AnthropicContent::start(Block block, std::vector<OJson>& events) {
  stop(events);
  OJson cb;
  switch (block.kind) {
    case Kind::kThinking:
      cb = {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}};
      break;
    case Kind::kText:
      cb = {{"type", "text"}, {"text", ""}};
      break;
    case Kind::kToolUse:
      cb = {{"type", "tool_use"}, {"id", block.id}, {"name", block.name}, {"input", OJson::object()}};
      break;
  }
  blocks_.push_back(std::move(block));
  open_ = true;
  events.push_back(
      {{"type", "content_block_start"}, {"index", blocks_.size() - 1}, {"content_block", std::move(cb)}});
}

void AnthropicContent::stop(std::vector<OJson>& events) {
  if (!open_) return;
  open_ = false;
  events.push_back({{"type", "content_block_stop"}, {"index", blocks_.size() - 1}});
}

void AnthropicContent::delta(Kind kind, const std::string& text, std::vector<OJson>& events) {
  if (text.empty()) return;
  if (kind != Kind::kToolUse && (!open_ || blocks_.back().kind != kind)) start({.kind = kind}, events);
  blocks_.back().text += text;
  OJson d;
  switch (kind) {
    case Kind::kThinking:
      d = {{"type", "thinking_delta"}, {"thinking", text}};
      break;
    case Kind::kText:
      d = {{"type", "text_delta"}, {"text", text}};
      break;
    case Kind::kToolUse:
      d = {{"type", "input_json_delta"}, {"partial_json", text}};
      break;
  }
  events.push_back({{"type", "content_block_delta"}, {"index", blocks_.size() - 1}, {"delta", std::move(d)}});
}

std::vector<OJson> AnthropicContent::push(std::string_view text, bool last) {
  if (parse_.ended()) return {};
  std::vector<OJson> events;
  for (const parsers::ParseEvent& e : parse_.push(text, last)) {
    switch (e.kind) {
      case EventKind::kReasoning:
        delta(Kind::kThinking, e.text, events);
        break;
      case EventKind::kContent:
        delta(Kind::kText, e.text, events);
        break;
      case EventKind::kToolCallBegin:
        start({.kind = Kind::kToolUse,
               .id = anthropic_tool_id(e.id),
               .name = e.name,
               .tool_index = e.tool_index},
              events);
        break;
      case EventKind::kToolCallArgs:
        // The parsers' contract (parse_event.h): arguments follow their call's begin, before anything else.
        TANDEM_CHECK(
            open_ && blocks_.back().kind == Kind::kToolUse && blocks_.back().tool_index == e.tool_index,
            "arguments of tool call {} outside its block", e.tool_index);
        delta(Kind::kToolUse, e.text, events);
        break;
      case EventKind::kToolCallEnd:
        stop(events);
        break;
    }
  }
  if (last) stop(events);
  return events;
}

OJson AnthropicContent::content() const {
  OJson out = OJson::array();
  for (const Block& b : blocks_) {
    switch (b.kind) {
      case Kind::kThinking:
        out.push_back({{"type", "thinking"}, {"thinking", b.text}, {"signature", ""}});
        break;
      case Kind::kText:
        out.push_back({{"type", "text"}, {"text", b.text}});
        break;
      case Kind::kToolUse: {
        // A call's arguments are a JSON object once the call has ended (a call cut off by max_tokens is
        // closed by the parser); "" is a call with no arguments streamed yet.
        OJson input = b.text.empty() ? OJson::object() : parse_json_text<OJson>(b.text, "tool_use input");
        out.push_back({{"type", "tool_use"}, {"id", b.id}, {"name", b.name}, {"input", std::move(input)}});
        break;
      }
    }
  }
  return out;
}

AnthropicStop anthropic_stop(const ChoiceState& state, bool called_tools) {
  if (state.finish_reason == "length") return {"max_tokens", nullptr};
  if (called_tools) return {"tool_use", nullptr};
  if (state.matched.is_string()) return {"stop_sequence", state.matched.get<std::string>()};
  return {"end_turn", nullptr};
}

}  // namespace tandem::server
