#include "tokenizer/chat.h"

#include "core/error.h"
#include "template/chat_template.h"

namespace tandem::tokenizer {

std::string apply_chat_template(const Tokenizer& tok, const nlohmann::ordered_json& messages,
                                const nlohmann::ordered_json& tools, bool add_generation_prompt,
                                const nlohmann::ordered_json& extra_kwargs,
                                const tmpl::TemplateLimits& limits) {
  if (tok.chat_template().empty()) fail("the tokenizer has no chat_template (tokenizer_config.json / chat_template.jinja)");
  if (!messages.is_array()) fail("messages must be a JSON list, got {}", messages.type_name());
  // Parsed per call: templates are a few KB and parsing is microseconds next to a forward pass.
  const tmpl::ChatTemplate t = tmpl::ChatTemplate::parse(tok.chat_template(), limits);
  nlohmann::ordered_json ctx = nlohmann::ordered_json::object();
  if (extra_kwargs.is_object())
    for (const auto& [k, v] : extra_kwargs.items()) ctx[k] = v;
  ctx["messages"] = messages;
  if (!tools.is_null()) ctx["tools"] = tools;
  ctx["add_generation_prompt"] = add_generation_prompt;
  if (auto b = tok.bos_token()) ctx["bos_token"] = *b;
  if (auto e = tok.eos_token()) ctx["eos_token"] = *e;
  return t.render(ctx);
}

}  // namespace tandem::tokenizer
