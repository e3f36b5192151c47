// Picking the tool-call and reasoning parsers of a checkpoint from its chat template (and tokenizer), so that
// `serve` needs no --tool-call-parser / --reasoning-parser flags for the supported families. An explicit flag
// still wins; the reason string is for the startup log.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace tandem::parsers {

struct ParserChoice {
  std::string tool_parser;       // a tool_parser_names() entry, or "" (none found)
  std::string reasoning_parser;  // a reasoning_parser_names() entry, or ""
  std::string reason;            // why, in one line
};

/// Whether the tokenizer has `text` as one token (an added token or a vocabulary entry).
using TokenLookup = std::function<bool(std::string_view text)>;

/// The template decides, by the syntax it teaches the model and renders past calls with:
///   <｜tool▁calls▁begin｜> → deepseekv3; <arg_key> → glm47 when the name is directly followed by <arg_key>
///   ("<tool_call>{function-name}<arg_key>"), else glm45; <function=...> with <parameter=...> → qwen3_coder;
///   <tool_call> → hermes. Reasoning: a template that mentions <think> gets glm45 / deepseek_r1 / qwen3 after
///   its chat format (<|assistant|>, <｜Assistant｜>, <|im_start|>; qwen3 otherwise). A template without <think>
///   gets no reasoning parser even if the vocabulary has the token (Qwen3-2507 Instruct shares Qwen3's).
/// With an empty template the tokens decide the same way (GLM then defaults to glm45). When `is_token` is
/// given, the reason notes a chosen tag that is not a single token (a sign of a mismatched template).
ParserChoice detect_parsers(std::string_view chat_template, const TokenLookup& is_token = {});

}  // namespace tandem::parsers
