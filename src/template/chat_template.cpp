#include "template/chat_template.h"

#include <fmt/format.h>

#include "template/ast.h"
#include "template/parser.h"
#include "template/render_error.h"
#include "template/renderer.h"

namespace tandem::tmpl {
namespace {

TemplateError to_template_error(const RenderError& e) {
  return TemplateError(e.kind(), e.message(), e.pos().line, e.pos().column);
}

}  // namespace

TemplateError::TemplateError(std::string kind, std::string message, int line, int column)
    : tandem::Error(fmt::format("chat template line {}, column {}: {}: {}", line, column, kind, message)),
      kind_(std::move(kind)),
      message_(std::move(message)),
      line_(line),
      column_(column) {}

ChatTemplate::ChatTemplate(std::string source, std::shared_ptr<const TemplateAst> ast)
    : source_(std::move(source)), ast_(std::move(ast)) {}

ChatTemplate ChatTemplate::parse(std::string source) {
  try {
    auto ast = std::make_shared<TemplateAst>(parse_template(source));
    return ChatTemplate(std::move(source), std::move(ast));
  } catch (const RenderError& e) {
    throw to_template_error(e);
  }
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) {
    throw TemplateError("TypeError",
                        fmt::format("template context must be a JSON object, got {}", context.type_name()), 0,
                        0);
  }
  try {
    Renderer renderer(*ast_);
    return renderer.render(from_json(context));
  } catch (const RenderError& e) {
    throw to_template_error(e);
  }
}

std::string ChatTemplate::render(const nlohmann::json& context) const {
  return render(nlohmann::ordered_json::parse(context.dump()));
}

}  // namespace tandem::tmpl
