// The content of one Anthropic Messages response, from its generated text. The same parse as the OpenAI route
// (ChoiceParse, chat_output.h: reasoning, content and tool calls from the server's output parsers), written
// as Anthropic's content blocks: a `thinking` block for reasoning, a `text` block for content, a `tool_use`
// block per call ({"id": "toolu_...", "name", "input": the arguments object, typed from the tool's schema}).
// Blocks follow the text's order; a new block starts where the kind of text changes, so the usual answer is
// [thinking?, text?, tool_use*].
//
// Streamed, each block is
//   content_block_start {"index": i, "content_block": {"type": "thinking", "thinking": "", "signature": ""} |
//                                                     {"type": "text", "text": ""} |
//                                                     {"type": "tool_use", "id", "name", "input": {}}}
//   content_block_delta {"index": i, "delta": {"type": "thinking_delta", "thinking"} |
//                                             {"type": "text_delta", "text"} |
//                                             {"type": "input_json_delta", "partial_json"}}   (any number)
//   content_block_stop  {"index": i}
// with indexes 0, 1, ... and one block open at a time; a call's partial_json fragments concatenate to its
// input JSON. The non-streamed `content` is the blocks these events build, whatever the sizes of the text
// pieces (tests/unit/anthropic_output_test.cpp). Thinking blocks carry an empty signature: this server does
// not sign reasoning, and accepts any signature sent back.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "server/chat_output.h"
#include "server/generation.h"

namespace tandem::server {

class AnthropicContent {
 public:
  /// `call_id_seed` is unique to the response: it names the tool_use blocks.
  AnthropicContent(const ChatOutputOptions& options, std::string call_id_seed);

  /// The stream events (data objects with their "type") for the next piece of text (whole UTF-8 characters,
  /// any number). `last`: the generation ended with this piece; the open block is closed. A push after the
  /// last one returns nothing.
  [[nodiscard]] std::vector<nlohmann::ordered_json> push(std::string_view text, bool last);

  /// The blocks of the text pushed so far, as a non-streamed response's `content`; call it after the last
  /// push (a tool_use block's input is parsed from its complete JSON).
  nlohmann::ordered_json content() const;
  bool called_tools() const { return !parse_.message().tool_calls.empty(); }

 private:
  enum class Kind { kThinking, kText, kToolUse };
  struct Block {
    Kind kind;
    std::string text;  // thinking, text, or the input JSON of a tool_use
    std::string id;    // tool_use
    std::string name;  // tool_use
    int tool_index = -1;
  };
  void start(Block block, std::vector<nlohmann::ordered_json>& events);
  void stop(std::vector<nlohmann::ordered_json>& events);
  void delta(Kind kind, const std::string& text, std::vector<nlohmann::ordered_json>& events);

  ChoiceParse parse_;
  std::vector<Block> blocks_;
  bool open_ = false;  // blocks_.back() has started and not stopped
};

/// Anthropic's id for a parsed tool call: the parser's "call_<hex>" as "toolu_<hex>".
std::string anthropic_tool_id(std::string_view call_id);

/// stop_reason and stop_sequence of a finished choice: "tool_use" when it stopped after calling tools,
/// "stop_sequence" with the matched string, "end_turn" at an end-of-turn token, "max_tokens" at the limit.
/// Only for "stop" and "length" finishes.
struct AnthropicStop {
  std::string reason;
  nlohmann::ordered_json sequence;  // the matched stop sequence, or null
};
AnthropicStop anthropic_stop(const ChoiceState& state, bool called_tools);

}  // namespace tandem::server
