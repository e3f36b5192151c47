// Tokenizer for Jinja templates, configured as Hugging Face configures it (trim_blocks=True,
// lstrip_blocks=True, default delimiters). It reproduces jinja2.lexer.Lexer's rules, including its quirks:
// one trailing newline of the template is dropped, `-` strips all whitespace (str.isspace) on that side,
// `+` disables lstrip_blocks, `{% raw %}` does not trim the newline after it, and end delimiters inside
// open brackets are operators ({{ {'a': {'b': 1}} }}).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "template/render_error.h"

namespace tandem::tmpl {

enum class TokenType : uint8_t {
  kData,           // literal template text
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,  // value is the unescaped text
  kInteger,
  kFloat,
  kOperator,  // value is the operator text: "+", "//", "(", ...
  kEof,
};

struct Token {
  TokenType type = TokenType::kEof;
  std::string value;
  int64_t int_value = 0;
  double float_value = 0.0;
  SourcePos pos;
};

/// Splits `source` into tokens. Throws RenderError (kind "TemplateSyntaxError", with position) on lexical
/// errors: unterminated comment or raw block, unexpected character, unbalanced brackets, bad escapes.
std::vector<Token> tokenize(std::string_view source);

/// Human-readable description of a token as Jinja words it in syntax errors ("end of statement block").
std::string describe_token(const Token& token);

}  // namespace tandem::tmpl
