// Validation of Anthropic Messages API bodies (/v1/messages, /v1/messages/count_tokens) into the chat
// machinery of the OpenAI route. A Messages body is converted into the chat-completions body a client would
// send for the same conversation, and rendered by render_chat_prompt (openai_request.h): the prompt is the
// OpenAI path's by construction, and so are the tools' order of keys, the tool-call checks and the output
// parsers.
//
// The conversion (anthropic_chat_body), block by block:
//   system (a string or text blocks)      -> a first {"role": "system"} message (omitted when empty)
//   user text blocks                      -> {"role": "user", "content": their text}; consecutive text
//                                            blocks are one message, concatenated as OpenAI content parts are
//   user tool_result {tool_use_id,        -> {"role": "tool", "tool_call_id", "content": its text}, in
//     content (string | text blocks),        place; its tool_use_id must name a tool_use of an earlier
//     is_error}                              assistant message; is_error is checked and not rendered (chat
//                                            templates have no place for it)
//   assistant text / thinking blocks      -> "content" / "reasoning_content" of one assistant message
//                                            ("content" is "" without text: a template that prints it must
//                                            not print "None")
//   assistant tool_use {id, name, input}  -> "tool_calls": [{"id", "type": "function", "function": {"name",
//                                            "arguments": input}}], input an object in the client's key order
//   assistant redacted_thinking           -> dropped (opaque)
//   tools [{name, description?,           -> [{"type": "function", "function": {"name", "description"?,
//     input_schema}]                         "parameters": input_schema}}]
//   tool_choice {type: auto | none}       -> "auto" | "none" (none: the template sees no tools and the output
//                                            is plain text); any and tool need decoding constrained to the
//                                            call syntax, which is not built: refused with a 400, as the
//                                            OpenAI route refuses "required" and a named function
//   thinking {type: enabled | adaptive    -> chat_template_kwargs {"enable_thinking": true | false};
//     | disabled, budget_tokens}             absent: the template's default. budget_tokens is checked, not
//                                            enforced: thinking ends where the model ends it
// Other keys of blocks and tools (cache_control, citations, caller, ...) are accepted and ignored; image,
// document and other block types, server tools and a final assistant message (prefill) are refused.
//
// Every mistake is a 400 ApiError naming the field in the request's terms
// ("messages[2].content[0].tool_use_id"); the route writes it in Anthropic's error shape.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "server/chat_output.h"
#include "server/generation.h"
#include "server/server_context.h"

namespace tandem::server {

/// The chat-completions body (messages, tools?, tool_choice?, chat_template_kwargs?) equivalent to the
/// `messages`, `system`, `tools`, `tool_choice` and `thinking` of an Anthropic body; keys in the client's
/// order.
nlohmann::ordered_json anthropic_chat_body(const nlohmann::ordered_json& body);

struct MessagesRequest {
  std::vector<int32_t> prompt;
  Generation::Choice choice;  // one choice: the Messages API has no n
  ChatOutputOptions output;
  bool stream = false;
};

/// POST /v1/messages: top-level fields model, max_tokens (required), messages, system, tools, tool_choice,
/// stop_sequences, temperature ([0, 1]), top_p, top_k, stream, metadata, thinking; service_tier and
/// cache_control are accepted and ignored, and `speculative` (false: no drafts) is tandem's extension. Other
/// fields are a 400; an unknown model a 404.
MessagesRequest parse_messages_request(const ServerContext& ctx, const nlohmann::ordered_json& body);

/// POST /v1/messages/count_tokens: the prompt tokens /v1/messages would render for model, messages, system,
/// tools, tool_choice and thinking (cache_control accepted).
int64_t count_message_tokens(const ServerContext& ctx, const nlohmann::ordered_json& body);

}  // namespace tandem::server
