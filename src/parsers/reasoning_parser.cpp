#include "parsers/reasoning_parser.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"

namespace tandem::parsers {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

}  // namespace

const std::vector<std::string>& reasoning_parser_names() {
  static const std::vector<std::string> kNames = {"glm45", "qwen3", "deepseek_r1"};
  return kNames;
}

std::vector<std::string> reasoning_tags() { return {std::string(kOpen), std::string(kClose)}; }

bool prompt_opens_reasoning(std::string_view prompt) {
  while (!prompt.empty() && is_space(prompt.back())) prompt.remove_suffix(1);
  return prompt.ends_with(kOpen);
}

ReasoningParser::ReasoningParser(std::string_view name, ReasoningOptions options)
    : options_(std::move(options)), state_(options_.starts_in_reasoning ? State::kOpenedStart : State::kStart) {
  const auto& names = reasoning_parser_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    fail("unknown reasoning parser '{}' (known: {})", name, fmt::join(names, ", "));
  }
  tags_.push_back(kClose);
  for (const std::string& tag : options_.ends_at) {
    TANDEM_CHECK(!tag.empty() && tag != kClose, "invalid tag '{}' to end reasoning at", tag);
    tags_.push_back(tag);
  }
}

void ReasoningParser::emit(EventKind kind, std::string_view text) {
  if (text.empty()) return;
  if (!events_.empty() && events_.back().kind == kind) {
    events_.back().text += text;
  } else {
    events_.push_back({.kind = kind, .text = std::string(text)});
  }
}

void ReasoningParser::reasoning(std::string_view text) {
  size_t end = text.size();
  while (end > 0 && is_space(text[end - 1])) --end;
  if (end == 0) {
    if (reasoning_started_) pending_space_ += text;
    return;
  }
  size_t begin = 0;
  if (!reasoning_started_) {
    while (is_space(text[begin])) ++begin;
  }
  emit(EventKind::kReasoning, pending_space_);
  emit(EventKind::kReasoning, text.substr(begin, end - begin));
  pending_space_ = std::string(text.substr(end));
  reasoning_started_ = true;
}

bool ReasoningParser::step() {
  switch (state_) {
    case State::kStart: {
      if (!in_.skip_space()) return false;
      const auto m = in_.accept(kOpen);
      if (m == TextScanner::Match::kPartial) return false;
      state_ = m == TextScanner::Match::kYes ? State::kReasoning : State::kContent;
      return true;
    }
    case State::kOpenedStart: {  // a <think> the model repeats after the prompt's is not reasoning text
      if (!in_.skip_space()) return false;
      if (in_.accept(kOpen) == TextScanner::Match::kPartial) return false;
      state_ = State::kReasoning;
      return true;
    }
    case State::kReasoning: {
      const auto t = in_.take_until(tags_);  // </think>, then the tool-call starts
      reasoning(t.text);
      if (t.tag < 0) return !t.text.empty();
      pending_space_.clear();
      if (t.tag == 0) {
        state_ = State::kContentStart;
      } else {  // a tool call: the tag is content
        emit(EventKind::kContent, tags_[t.tag]);
        state_ = State::kContent;
      }
      return true;
    }
    case State::kContentStart:
      if (!in_.skip_space()) return false;
      state_ = State::kContent;
      return true;
    case State::kContent: {
      const std::string_view r = in_.rest();
      emit(EventKind::kContent, r);
      in_.advance(r.size());
      return false;
    }
  }
  return false;
}

std::vector<ParseEvent> ReasoningParser::push(std::string_view delta) {
  in_.push(delta);
  while (step()) {
  }
  in_.compact();
  std::vector<ParseEvent> e = std::move(events_);
  events_.clear();
  return e;
}

std::vector<ParseEvent> ReasoningParser::finish() {
  in_.set_eof();
  while (step()) {
  }
  pending_space_.clear();
  std::vector<ParseEvent> e = std::move(events_);
  events_.clear();
  return e;
}

}  // namespace tandem::parsers
