#include "parsers/tool_parser_base.h"

#include "parsers/json_stream.h"
#include "parsers/tool_call_id.h"

namespace tandem::parsers {

bool valid_function_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (char c : name) {
    const auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b == 0x7F || std::string_view("<>\"'{}[]()=,;`").find(c) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

void CallWriter::emit(EventKind kind, std::string_view text) {
  if (text.empty()) return;
  if (!events_.empty() && events_.back().kind == kind) {
    events_.back().text += text;
    return;
  }
  events_.push_back({.kind = kind, .text = std::string(text), .tool_index = kind == EventKind::kContent ? -1 : n_calls_ - 1});
}

void CallWriter::content(std::string_view text) {
  size_t end = text.size();
  while (end > 0 && is_space(text[end - 1])) --end;
  if (end == 0) {  // whitespace only: decided by what follows
    if (content_started_) pending_space_ += text;
    return;
  }
  size_t begin = 0;
  if (!content_started_) {
    while (is_space(text[begin])) ++begin;
  }
  std::string piece = std::move(pending_space_);
  piece += text.substr(begin, end - begin);
  emit(EventKind::kContent, piece);
  pending_space_ = std::string(text.substr(end));
  content_started_ = true;
}

void CallWriter::begin_call(std::string_view name) {
  pending_space_.clear();
  const int index = n_calls_++;
  events_.push_back(
      {.kind = EventKind::kToolCallBegin, .tool_index = index, .id = tool_call_id(seed_, index), .name = std::string(name)});
  in_call_ = true;
}

void CallWriter::args(std::string_view json) { emit(EventKind::kToolCallArgs, json); }

void CallWriter::end_call() {
  events_.push_back({.kind = EventKind::kToolCallEnd, .tool_index = n_calls_ - 1});
  in_call_ = false;
}

std::vector<ParseEvent> CallWriter::take() {
  std::vector<ParseEvent> e = std::move(events_);
  events_.clear();
  return e;
}

void KeyValueArgs::open() {
  n_ = 0;
  in_value_ = false;
  closed_ = false;
  out_.args("{");
}

void KeyValueArgs::begin_value(std::string_view key, ArgTypes types) {
  end_value();
  key_ = key;
  types_ = types;
  raw_.clear();
  in_value_ = true;
  streaming_ = is_string_only(types);
  if (streaming_) {
    out_.args((n_++ > 0 ? "," : "") + json_quote(key_) + ":\"");
  }
}

void KeyValueArgs::value_text(std::string_view text) {
  if (!in_value_ || text.empty()) return;
  if (streaming_) {
    std::string escaped;
    append_json_escaped(escaped, text);
    out_.args(escaped);
  } else {
    raw_ += text;
  }
}

void KeyValueArgs::end_value() {
  if (!in_value_) return;
  in_value_ = false;
  if (streaming_) {
    out_.args("\"");
  } else {
    out_.args((n_++ > 0 ? "," : "") + json_quote(key_) + ":" + typed_argument_json(raw_, types_));
  }
}

void KeyValueArgs::close() {
  if (closed_) return;
  end_value();
  out_.args("}");
  closed_ = true;
}

std::vector<ParseEvent> StreamingToolParser::push(std::string_view delta) {
  in_.push(delta);
  while (step()) {
  }
  in_.compact();
  return out_.take();
}

std::vector<ParseEvent> StreamingToolParser::finish() {
  in_.set_eof();
  while (true) {
    while (step()) {
    }
    if (!undecided_) break;
    reject_call();  // the output ended before the call's name was complete
  }
  close_at_eof();
  out_.finish();
  return out_.take();
}

void StreamingToolParser::open_undecided(std::string_view tag) {
  start_tag_ = tag;
  in_.mark();
  after_tag_ = in_.position();
  undecided_ = true;
}

void StreamingToolParser::begin_call(std::string_view name) {
  out_.begin_call(name);
  in_.unmark();
  undecided_ = false;
}

void StreamingToolParser::drop_undecided() {
  in_.unmark();
  undecided_ = false;
}

bool StreamingToolParser::reject_call() {
  out_.content(start_tag_);
  in_.rewind(after_tag_);
  undecided_ = false;
  to_content();
  return true;
}

}  // namespace tandem::parsers
