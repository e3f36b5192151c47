// Recursive-descent parser for Jinja templates, following jinja2.parser.Parser's grammar and precedence
// (including its quirks: unary minus binds tighter than `**`, filters bind to the unary operand, `is` tests
// take one bare argument).
#pragma once

#include <string_view>

#include "template/ast.h"
#include "template/limits.h"

namespace tandem::tmpl {

/// Parses a template. Throws RenderError (kind "TemplateSyntaxError" or "TemplateAssertionError", with
/// position) for syntax errors, unknown tags and, outside if-branches, unknown filters and tests — the
/// same cases in which jinja2's Environment.from_string raises — and (TemplateSyntaxError) for syntax nested
/// deeper than limits.max_nesting.
TemplateAst parse_template(std::string_view source, const TemplateLimits& limits = {});

}  // namespace tandem::tmpl
