// Hugging Face chat templates: a Jinja interpreter with the semantics of transformers'
// `_compile_jinja_template` environment — jinja2 ImmutableSandboxedEnvironment(trim_blocks=True,
// lstrip_blocks=True, extensions=[loopcontrols, generation]) with tojson = json.dumps(x, ensure_ascii=False,
// indent=None, separators=None, sort_keys=False) and the globals raise_exception(msg) and strftime_now(fmt).
// Output is byte-identical to Python Jinja2 for the constructs it supports (tests/unit/template_parity_test).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"
#include "template/limits.h"

namespace tandem::tmpl {

struct TemplateAst;

/// A syntax or render error, with the template position it happened at.
class TemplateError : public tandem::Error {
 public:
  TemplateError(std::string kind, std::string message, int line, int column);

  /// The Jinja/Python exception class the reference renderer raises: "TemplateSyntaxError",
  /// "TemplateError" (raise_exception), "UndefinedError", "TypeError", ...
  const std::string& kind() const { return kind_; }
  /// The bare message; for raise_exception(msg) exactly msg.
  const std::string& message() const { return message_; }
  int line() const { return line_; }
  int column() const { return column_; }
  /// True when the template itself rejected the input through raise_exception().
  bool raised_by_template() const { return kind_ == "TemplateError"; }

 private:
  std::string kind_;
  std::string message_;
  int line_;
  int column_;
};

class ChatTemplate {
 public:
  /// Parses once. Syntax errors, unknown tags and (outside if-branches) unknown filters/tests throw
  /// TemplateError with "line L, column C" and what was expected; so does syntax nested deeper than
  /// limits.max_nesting. `limits` also bound every render of this template (template/limits.h).
  static ChatTemplate parse(std::string source, const TemplateLimits& limits = {});

  /// Renders with `context` (a JSON object) as the template's global variables: messages, tools,
  /// add_generation_prompt, enable_thinking, bos_token, ... Object key order is significant (tojson and
  /// dict iteration preserve it), hence ordered_json. Runtime errors — raise_exception, undefined
  /// attribute use, type errors — throw TemplateError with the template position; raise_exception's
  /// message is kept verbatim in message(). A render that reaches one of the TemplateLimits (steps, output
  /// or string size, call or evaluation depth, nesting of built values or of `context`) stops with a
  /// TemplateError of kind "RenderLimitError" naming the limit.
  std::string render(const nlohmann::ordered_json& context) const;

  /// Convenience overload: nlohmann::json sorts object keys, so dict order is alphabetical here.
  std::string render(const nlohmann::json& context) const;

  const std::string& source() const { return source_; }
  const TemplateLimits& limits() const { return limits_; }

 private:
  ChatTemplate(std::string source, std::shared_ptr<const TemplateAst> ast, const TemplateLimits& limits);

  std::string source_;
  std::shared_ptr<const TemplateAst> ast_;
  TemplateLimits limits_;
};

}  // namespace tandem::tmpl
