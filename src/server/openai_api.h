// The OpenAI-compatible routes: /v1/completions, /v1/chat/completions, /v1/models.
//
// Response extension: with speculative decoding on, `usage.spec` carries
// {verify_steps, draft_tokens, accepted_tokens, mean_accept_length} summed over the request's choices;
// mean_accept_length = completion tokens / verify steps (SGLang's spec_accept_length). Choices carry
// vLLM's `stop_reason` (the matched stop string or stop token id, else null).
//
// Chat choices are parsed (chat_output.h): `message.reasoning_content` and `message.tool_calls` (and their stream
// deltas) with the server's output parsers (output_parsers.h); finish_reason "tool_calls" for a choice that
// stopped after calling tools.
#pragma once

#include <string>
#include <string_view>

#include "server/reply.h"
#include "server/server_context.h"

namespace tandem::server {

/// Throws ApiError for invalid requests; a stream's errors after the headers are sent are error events.
Reply handle_completions(ServerContext& ctx, const std::string& body, Clock::time_point arrival);
Reply handle_chat_completions(ServerContext& ctx, const std::string& body, Clock::time_point arrival);
/// GET /v1/models, or /v1/models/{id} when `id` is non-empty (404 for another id).
Reply handle_models(ServerContext& ctx, std::string_view id);

}  // namespace tandem::server
