#include "server/output_parsers.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"
#include "parsers/detect.h"
#include "parsers/reasoning_parser.h"
#include "parsers/tool_parser.h"

namespace tandem::server {
namespace {

constexpr std::string_view kNone = "none";

std::vector<std::string> with_none(std::vector<std::string> names) {
  names.emplace_back(kNone);
  return names;
}

void check_flag(std::string_view flag, std::string_view value, const std::vector<std::string>& allowed) {
  if (value.empty() || std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  fail("{} '{}' is not one of {}", flag, value, fmt::join(allowed, ", "));
}

// The tags a special token of `tok` would hide from the parser when decoding skips special tokens.
std::vector<std::string> special_tags(const OutputParsers& p, const tokenizer::Tokenizer& tok) {
  std::vector<std::string> tags;
  if (!p.tool_parser.empty()) tags = parsers::make_tool_parser(p.tool_parser, {})->tags();
  if (!p.reasoning_parser.empty()) {
    for (std::string& t : parsers::reasoning_tags()) tags.push_back(std::move(t));
  }
  std::vector<std::string> special;
  for (const std::string& t : tags) {
    if (auto id = tok.token_to_id(t); id && tok.is_special(*id)) special.push_back(t);
  }
  return special;
}

}  // namespace

std::vector<std::string> tool_parser_flag_values() {
  return with_none(parsers::tool_parser_names());
}
std::vector<std::string> reasoning_parser_flag_values() {
  return with_none(parsers::reasoning_parser_names());
}

OutputParsers choose_output_parsers(std::string_view tool_flag, std::string_view reasoning_flag,
                                    const tokenizer::Tokenizer& tok) {
  check_flag("--tool-call-parser", tool_flag, tool_parser_flag_values());
  check_flag("--reasoning-parser", reasoning_flag, reasoning_parser_flag_values());
  OutputParsers p;
  std::string detected_reason;
  if (tool_flag.empty() || reasoning_flag.empty()) {
    const parsers::ParserChoice d = parsers::detect_parsers(
        tok.chat_template(), [&tok](std::string_view text) { return tok.token_to_id(text).has_value(); });
    if (tool_flag.empty()) p.tool_parser = d.tool_parser;
    if (reasoning_flag.empty()) p.reasoning_parser = d.reasoning_parser;
    detected_reason = d.reason;
  }
  if (!tool_flag.empty() && tool_flag != kNone) p.tool_parser = tool_flag;
  if (!reasoning_flag.empty() && reasoning_flag != kNone) p.reasoning_parser = reasoning_flag;

  auto how = [](std::string_view flag) -> std::string {
    if (flag.empty()) return "detected";
    return flag == kNone ? "off by flag" : "by flag";
  };
  p.reason = fmt::format("tool calls {} ({}), reasoning {} ({})",
                         p.tool_parser.empty() ? "none" : p.tool_parser, how(tool_flag),
                         p.reasoning_parser.empty() ? "none" : p.reasoning_parser, how(reasoning_flag));
  if (!detected_reason.empty()) p.reason += "; detection: " + detected_reason;
  if (const auto special = special_tags(p, tok); !special.empty()) {
    p.keep_special_tokens = true;
    p.reason += fmt::format("; {} special in the tokenizer: parsed outputs keep special tokens",
                            fmt::join(special, " "));
  }
  return p;
}

}  // namespace tandem::server
