// Reasoning parsers: split <think>...</think> off the start of the output into reasoning_content.
//
// Formats (names accepted by make_reasoning_parser): glm45 (GLM-4.5/4.6/4.7), qwen3 (Qwen3, Qwen3.5),
// deepseek_r1 (DeepSeek-R1, V3.1). All three use <think> and </think>; they differ in their templates only,
// i.e. in whether the generation prompt already opened the block, which is per request (enable_thinking) and
// so is passed in, not implied by the name:
//   - starts_in_reasoning: the rendered prompt ends with <think> (GLM-4.7 with thinking on, Qwen3.5 thinking,
//     DeepSeek-R1-0528); see prompt_opens_reasoning(). The output is reasoning up to </think> (a <think> the
//     model writes again at the very start is dropped, as DeepSeek-R1 does).
//   - otherwise the output is reasoning only if it starts with <think> (after whitespace), as Qwen3 and
//     GLM-4.5 write it themselves; else it is all content. A model that skips thinking when its prompt did not
//     open the block (GLM-4.7 with enable_thinking=false ends its prompt with </think>) thus never has its
//     answer taken for reasoning (sglang#37645).
// Reasoning also ends at a tool-call start tag (`ends_at`): GLM-4.7 may begin a call without closing </think>
// (vllm#42400, #46040); the tag and the rest are content for the tool parser.
//
// Reasoning text is trimmed (whitespace after <think> and before </think> is dropped), and so is the
// whitespace before the content (after </think>, or at the start of an output without reasoning); the rest
// of the content passes through unchanged. A <think> or </think> later in the content is plain text.
// At finish(), an unterminated reasoning block (max_tokens while thinking) stays reasoning: it has been
// streamed as such, and a non-streamed parse gives the same.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/parse_event.h"
#include "parsers/text_scanner.h"

namespace tandem::parsers {

struct ReasoningOptions {
  bool starts_in_reasoning = false;
  std::vector<std::string> ends_at;  // tags that end reasoning without </think> and start the content
};

class ReasoningParser {
 public:
  /// Throws tandem::Error for a name not in reasoning_parser_names().
  ReasoningParser(std::string_view name, ReasoningOptions options);
  ReasoningParser(const ReasoningParser&) = delete;  // tags_ points into options_
  ReasoningParser& operator=(const ReasoningParser&) = delete;

  /// Emits kReasoning and kContent events; any delta size, same contract as ToolParser::push.
  [[nodiscard]] std::vector<ParseEvent> push(std::string_view delta);
  [[nodiscard]] std::vector<ParseEvent> finish();

 private:
  enum class State { kStart, kOpenedStart, kReasoning, kContentStart, kContent };
  bool step();
  void emit(EventKind kind, std::string_view text);
  void reasoning(std::string_view text);

  ReasoningOptions options_;
  std::vector<std::string_view> tags_;  // </think>, then options_.ends_at (views into options_)
  State state_;
  TextScanner in_;
  std::vector<ParseEvent> events_;
  bool reasoning_started_ = false;
  std::string pending_space_;  // trailing reasoning whitespace: dropped at </think>
};

const std::vector<std::string>& reasoning_parser_names();
/// The tags every reasoning format reads (<think>, </think>); see ToolParser::tags().
std::vector<std::string> reasoning_tags();

/// Whether the rendered prompt leaves the model inside a reasoning block: it ends (trailing whitespace
/// ignored) with `<think>`.
bool prompt_opens_reasoning(std::string_view prompt);

}  // namespace tandem::parsers
