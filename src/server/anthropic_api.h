// The Anthropic Messages API: POST /v1/messages and POST /v1/messages/count_tokens, for clients built on
// Anthropic's SDKs (coding agents). Requests go through the chat machinery of /v1/chat/completions
// (anthropic_request.h: the same rendered prompt, tools and output parsers); responses are Anthropic's
// (anthropic_output.h):
//
//   {"id": "msg_...", "type": "message", "role": "assistant", "model", "content": [blocks],
//    "stop_reason": "end_turn" | "max_tokens" | "stop_sequence" | "tool_use", "stop_sequence": string | null,
//    "usage": {"input_tokens", "cache_creation_input_tokens": 0, "cache_read_input_tokens", "output_tokens"}}
//
// usage counts prompt tokens as Anthropic does: input_tokens are those not read from the prefix cache,
// cache_read_input_tokens those that were (their sum is what count_tokens returns). tandem's extension, as on
// the OpenAI routes: `usage.spec`, the request's speculative record, when the server speculates.
//
// A stream is Anthropic's event sequence, each event named (`event: <type>`): message_start (the message with
// empty content and the prompt's usage, sent once the prompt is admitted, so the prefix-cache hit is known),
// the content blocks' events, message_delta {"delta": {"stop_reason", "stop_sequence"}, "usage": {all four
// counts}}, message_stop. A failure after the headers is an `error` event, which ends the stream.
// Errors before it are Anthropic's error body (errors.h) with the HTTP status.
#pragma once

#include <string>

#include "server/reply.h"
#include "server/server_context.h"

namespace tandem::server {

/// Throws ApiError for invalid requests (the route writes them in Anthropic's shape).
Reply handle_messages(ServerContext& ctx, const std::string& body, Clock::time_point arrival);
/// {"input_tokens": n}: the prompt tokens of the same body on /v1/messages.
Reply handle_count_tokens(ServerContext& ctx, const std::string& body);

}  // namespace tandem::server
