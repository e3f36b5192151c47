#include "parsers/detect.h"

#include <fmt/format.h>

#include <span>

#include "parsers/text_scanner.h"

namespace tandem::parsers {
namespace {

bool has(std::string_view text, std::string_view what) { return text.find(what) != std::string_view::npos; }

struct Evidence {
  std::string_view source;  // "template" or "tokens"
  std::function<bool(std::string_view)> contains;
};

// The tool parser and why, or "".
std::pair<std::string, std::string> detect_tool_parser(const Evidence& e) {
  if (e.contains("<｜tool▁calls▁begin｜>") || e.contains("<｜tool▁call▁begin｜>")) {
    return {"deepseekv3", fmt::format("{} has DeepSeek's <｜tool▁calls▁begin｜>", e.source)};
  }
  if (e.contains("<arg_key>")) {
    if (e.contains("{function-name}<arg_key>")) {
      return {"glm47", fmt::format("{} has GLM's <arg_key> with the name directly followed by it (GLM-4.7)", e.source)};
    }
    if (e.contains("{function-name}\n<arg_key>")) {
      return {"glm45", fmt::format("{} has GLM's <arg_key> on a new line after the name (GLM-4.5/4.6)", e.source)};
    }
    if (e.contains("</arg_key><arg_value>")) {
      return {"glm47", fmt::format("{} renders GLM arguments without newlines (GLM-4.7)", e.source)};
    }
    return {"glm45", fmt::format("{} has GLM's <arg_key>", e.source)};
  }
  if (e.contains("<function=") && e.contains("<parameter=")) {
    return {"qwen3_coder", fmt::format("{} has Qwen3-Coder's <function=...><parameter=...>", e.source)};
  }
  if (e.contains("<tool_call>")) {
    return {"hermes", fmt::format("{} has <tool_call> with a JSON call (Hermes/Qwen3)", e.source)};
  }
  return {"", ""};
}

std::pair<std::string, std::string> detect_reasoning_parser(const Evidence& e) {
  if (!e.contains("<think>") && !e.contains("</think>")) {
    return {"", fmt::format("{} has no <think>", e.source)};
  }
  if (e.contains("<|assistant|>") || e.contains("<arg_key>") || e.contains("[gMASK]")) {
    return {"glm45", fmt::format("{} has <think> and GLM's <|assistant|>", e.source)};
  }
  if (e.contains("<｜Assistant｜>")) {
    return {"deepseek_r1", fmt::format("{} has <think> and DeepSeek's <｜Assistant｜>", e.source)};
  }
  if (e.contains("<|im_start|>")) return {"qwen3", fmt::format("{} has <think> and ChatML's <|im_start|>", e.source)};
  return {"qwen3", fmt::format("{} has <think>", e.source)};
}

// The tags the parser expects as single tokens.
std::span<const std::string_view> key_tags(const std::string& tool_parser) {
  static constexpr std::string_view kDeepSeek[] = {"<｜tool▁calls▁begin｜>", "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>"};
  static constexpr std::string_view kGlm[] = {"<tool_call>", "<arg_key>", "<arg_value>"};
  static constexpr std::string_view kToolCall[] = {"<tool_call>", "</tool_call>"};
  if (tool_parser == "deepseekv3") return kDeepSeek;
  if (tool_parser == "glm45" || tool_parser == "glm47") return kGlm;
  if (tool_parser == "qwen3_coder" || tool_parser == "hermes") return kToolCall;
  return {};
}

constexpr std::string_view kThinkTags[] = {"<think>", "</think>"};

}  // namespace

ParserChoice detect_parsers(std::string_view chat_template, const TokenLookup& is_token) {
  const bool from_template = !trim(chat_template).empty();
  Evidence e;
  if (from_template) {
    e = {.source = "template", .contains = [&](std::string_view s) { return has(chat_template, s); }};
  } else {
    e = {.source = "tokens", .contains = [&](std::string_view s) { return is_token && is_token(s); }};
  }
  ParserChoice c;
  auto [tool, tool_why] = detect_tool_parser(e);
  auto [reasoning, reasoning_why] = detect_reasoning_parser(e);
  c.tool_parser = tool;
  c.reasoning_parser = reasoning;
  c.reason = tool.empty() ? fmt::format("no tool parser ({} has no tool-call syntax)", e.source)
                          : fmt::format("tool parser {}: {}", tool, tool_why);
  c.reason += reasoning.empty() ? fmt::format("; no reasoning parser ({})", reasoning_why)
                                : fmt::format("; reasoning parser {}: {}", reasoning, reasoning_why);
  if (from_template && is_token) {
    auto note_if_split = [&](std::string_view tag) {
      if (!is_token(tag)) c.reason += fmt::format("; note: {} is not a single token", tag);
    };
    for (std::string_view tag : key_tags(tool)) note_if_split(tag);
    if (!reasoning.empty()) {
      for (std::string_view tag : kThinkTags) note_if_split(tag);
    }
  }
  return c;
}

}  // namespace tandem::parsers
