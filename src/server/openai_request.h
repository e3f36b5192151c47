// Validation of /v1/completions and /v1/chat/completions bodies into engine requests. Everything a client
// can get wrong is a 400 (or 404 for an unknown model) naming the field; nothing reaches the engine
// unchecked.
//
// Extensions beyond the OpenAI fields (vLLM / SGLang names): top_k, min_p, repetition_penalty, ignore_eos,
// stop_token_ids, skip_special_tokens, include_stop_str_in_output; chat also add_generation_prompt and
// chat_template_kwargs. Unknown fields are rejected, as the OpenAI API does. `parallel_tool_calls` is accepted
// (a boolean) but not enforced: every call the model writes is reported.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "server/chat_output.h"
#include "server/chat_tools.h"
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
  ChatOutputOptions output;  // how each choice's text becomes its message (chat_output.h)
};

CompletionRequest parse_completion_request(const ServerContext& ctx, const nlohmann::json& body);
/// `body` keeps the client's key order (parse_body_ordered): messages, tools and chat_template_kwargs reach the
/// chat template as sent.
ChatRequest parse_chat_request(const ServerContext& ctx, const nlohmann::ordered_json& body);

/// The prompt of /v1/chat/completions and /tokenize: the body's messages (chat_messages.h), tools and
/// tool_choice (chat_tools.h) and chat_template_kwargs, validated and rendered through the checkpoint's chat
/// template in the client's key order. 400 when a field is invalid or the template fails.
struct ChatPrompt {
  std::string text;
  ChatTools tools;
};
ChatPrompt render_chat_prompt(const ServerContext& ctx, const nlohmann::ordered_json& body,
                              bool add_generation_prompt);
/// The same with the tokenizer alone (its chat template), for callers without a served model (unit tests).
ChatPrompt render_chat_prompt(const tokenizer::Tokenizer& tok, const nlohmann::ordered_json& body,
                              bool add_generation_prompt);

/// What a rendered chat prompt gives the engine and the output parsers, shared by the OpenAI and Anthropic
/// routes: the prompt's token ids (400 naming `param` when it does not tokenize, is empty or leaves the
/// vocabulary) and how each choice's text is parsed (the server's parsers; tool calls only when the request's
/// tools are parsed, reasoning from where the prompt leaves the model).
struct ChatInput {
  std::vector<int32_t> prompt;
  ChatOutputOptions output;
};
ChatInput chat_input(const ServerContext& ctx, const ChatPrompt& prompt, const std::string& param);

/// Text options of a parsed chat output: a parser's tags must stay in the text even where the tokenizer marks
/// them special (output_parsers.h), so special tokens are kept when a parser runs on such tags.
void keep_parser_tags(const ServerContext& ctx, const ChatOutputOptions& output, TextOptions& text);

/// 404 model_not_found unless `model` is absent or the served name (shared with the native API).
void check_model_name(const ServerContext& ctx, const JsonFields& f);

/// The token budget of a request: `requested` if it fits the context, else 400; when absent,
/// `default_tokens` (or the rest of the context when <= 0) clipped to the context. 400 when the prompt
/// alone fills the context. `param` names the max-tokens field in messages.
int resolve_max_tokens(std::optional<int64_t> requested, int64_t default_tokens, int64_t prompt_len,
                       int64_t max_model_len, const std::string& param);

}  // namespace tandem::server
