// Native routes: SGLang's /generate, /get_model_info, /get_server_info; vLLM's /tokenize and /detokenize.
#pragma once

#include <string>

#include "server/reply.h"
#include "server/server_context.h"

namespace tandem::server {

/// SGLang /generate: {text | input_ids, sampling_params, stream, rid, return_logprob, top_logprobs_num}.
/// A list of texts / id lists gives a list of results (not streamable). Streaming events carry the
/// cumulative text and output_ids, as SGLang does, and finish_reason only on the last one.
Reply handle_generate(ServerContext& ctx, const std::string& body, Clock::time_point arrival);
/// vLLM /tokenize: {prompt, add_special_tokens=true} or {messages, add_generation_prompt=true,
/// add_special_tokens=false, tools, chat_template_kwargs}; return_token_strs. -> {count, max_model_len, tokens,
/// token_strs}.
Reply handle_tokenize(ServerContext& ctx, const std::string& body);
/// vLLM /detokenize: {tokens} -> {prompt}.
Reply handle_detokenize(ServerContext& ctx, const std::string& body);
Reply handle_model_info(ServerContext& ctx);
/// The launch arguments flattened at the top level (SGLang's layout), max_total_num_tokens,
/// internal_states[0] {avg_spec_accept_length, ...}, and the draft precision decision.
Reply handle_server_info(ServerContext& ctx);

}  // namespace tandem::server
