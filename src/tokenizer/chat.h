// Rendering a conversation with the checkpoint's own chat template, as transformers'
// `apply_chat_template` does: the template sees `messages`, `tools` (when given), `add_generation_prompt`,
// the tokenizer's special tokens (bos_token, eos_token, ...) and any extra keyword arguments
// (e.g. `enable_thinking`).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "template/limits.h"
#include "tokenizer/tokenizer.h"

namespace tandem::tokenizer {

/// Throws tandem::Error when the tokenizer has no chat template, or the template fails (with its line and
/// column, or the template's own raise_exception message), or runs into one of `limits` (steps, output size,
/// recursion, nesting: template/limits.h).
std::string apply_chat_template(const Tokenizer& tok, const nlohmann::ordered_json& messages,
                                const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                const nlohmann::ordered_json& extra_kwargs,
                                const tmpl::TemplateLimits& limits = {});

}  // namespace tandem::tokenizer
