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

// Whether arrays / objects nest more than `levels` deep; recurses at most levels + 1 deep itself, so it is
// safe on a context nested 10^5 deep (converting, dumping or printing one would overflow the stack).
template <class Json>
bool nests_deeper_than(const Json& j, int levels) {
  if (!j.is_structured()) return false;
  if (levels <= 0) return true;
  for (const auto& item : j)
    if (nests_deeper_than(item, levels - 1)) return true;
  return false;
}

template <class Json>
void check_context(const Json& context, const TemplateLimits& limits) {
  if (!context.is_object()) {
    throw TemplateError("TypeError",
                        fmt::format("template context must be a JSON object, got {}", context.type_name()), 0,
                        0);
  }
  if (nests_deeper_than(context, limits.max_nesting))
    throw TemplateError("RenderLimitError",
                        fmt::format("the template context nests deeper than TemplateLimits::max_nesting ({})",
                                    limits.max_nesting),
                        0, 0);
}

}  // namespace

TemplateError::TemplateError(std::string kind, std::string message, int line, int column)
    : tandem::Error(fmt::format("chat template line {}, column {}: {}: {}", line, column, kind, message)),
      kind_(std::move(kind)),
      message_(std::move(message)),
      line_(line),
      column_(column) {}

ChatTemplate::ChatTemplate(std::string source, std::shared_ptr<const TemplateAst> ast,
                           const TemplateLimits& limits)
    : source_(std::move(source)), ast_(std::move(ast)), limits_(limits) {}

ChatTemplate ChatTemplate::parse(std::string source, const TemplateLimits& limits) {
  try {
    auto ast = std::make_shared<TemplateAst>(parse_template(source, limits));
    return ChatTemplate(std::move(source), std::move(ast), limits);
  } catch (const RenderError& e) {
    throw to_template_error(e);
  }
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  check_context(context, limits_);
  try {
    Renderer renderer(*ast_, limits_);
    return renderer.render(from_json(context));
  } catch (const RenderError& e) {
    throw to_template_error(e);
  }
}

std::string ChatTemplate::render(const nlohmann::json& context) const {
  check_context(context, limits_);
  return render(nlohmann::ordered_json::parse(context.dump()));
}

}  // namespace tandem::tmpl
