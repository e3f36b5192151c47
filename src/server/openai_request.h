// Validation of /v1/completions and /v1/chat/completions bodies into engine requests. Everything a client
// can get wrong is a 400 (or 404 for an unknown model) naming the field; nothing reaches the engine
// unchecked.
//
// Extensions beyond the OpenAI fields (vLLM / SGLang names): top_k, min_p, repetition_penalty, ignore_eos,
// stop_token_ids, skip_special_tokens, include_stop_str_in_output; chat also add_generation_prompt and
// chat_template_kwargs. Unknown fields are rejected, as the OpenAI API does.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "server/generation.h"
#include "server/json_fields.h"
#include "server/server_context.h"

namespace tandem::server {

struct StreamOptions {
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage: a final chunk with usage, no choices
  bool continuous_usage_stats = false;  // stream_options.continuous_usage_stats (vLLM): usage on every chunk
};

struct CompletionRequest {
  std::vector<std::vector<int32_t>> prompts;  // token ids per prompt
  std::vector<std::string> prompt_texts;      // what echo prepends, per prompt
  std::vector<Generation::Choice> choices;    // prompt p, sample j -> choices[p * n + j]
  int n = 1;
  bool echo = false;
  int logprobs = -1;                          // -1: none; k: chosen token + top k alternatives
  StreamOptions stream;
};

struct ChatRequest {
  std::vector<int32_t> prompt;
  std::vector<Generation::Choice> choices;
  int n = 1;
  bool logprobs = false;
  int top_logprobs = 0;
  StreamOptions stream;
};

CompletionRequest parse_completion_request(const ServerContext& ctx, const nlohmann::json& body);
ChatRequest parse_chat_request(const ServerContext& ctx, const nlohmann::json& body);

/// 404 model_not_found unless `model` is absent or the served name (shared with the native API).
void check_model_name(const ServerContext& ctx, const JsonFields& f);

/// The token budget of a request: `requested` if it fits the context, else 400; when absent,
/// `default_tokens` (or the rest of the context when <= 0) clipped to the context. 400 when the prompt
/// alone fills the context. `param` names the max-tokens field in messages.
int resolve_max_tokens(std::optional<int64_t> requested, int64_t default_tokens, int64_t prompt_len,
                       int64_t max_model_len, const std::string& param);

}  // namespace tandem::server
