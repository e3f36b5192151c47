// Logprobs in the three wire formats: OpenAI completions ({tokens, token_logprobs, top_logprobs,
// text_offset}), OpenAI chat ({content: [{token, logprob, bytes, top_logprobs}]}) and SGLang's native
// ([logprob, token_id, text] triples).
#pragma once

#include <nlohmann/json.hpp>

#include <span>
#include <string>

#include "engine/request.h"
#include "tokenizer/tokenizer.h"

namespace tandem::server {

/// A token's own text (special tokens included), as logprob entries name it.
std::string token_text(const tokenizer::Tokenizer& tok, int32_t id);

/// Completions format for `lps`; text_offset starts at `offset` and advances by each token's text length
/// (vLLM's convention); `offset` is updated so consecutive stream chunks continue it.
nlohmann::json completion_logprobs(const tokenizer::Tokenizer& tok, std::span<const engine::TokenLogprob> lps,
                                   size_t& offset);

/// Chat format: {"content": [...]}.
nlohmann::json chat_logprobs(const tokenizer::Tokenizer& tok, std::span<const engine::TokenLogprob> lps);

/// SGLang format: output_token_logprobs [[logprob, id, text]], output_top_logprobs [[[logprob, id, text]...]].
nlohmann::json native_token_logprobs(const tokenizer::Tokenizer& tok, std::span<const engine::TokenLogprob> lps);
nlohmann::json native_top_logprobs(const tokenizer::Tokenizer& tok, std::span<const engine::TokenLogprob> lps);

}  // namespace tandem::server
