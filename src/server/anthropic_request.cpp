#include "server/anthropic_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>

#include "parsers/tool_parser.h"
#include "server/errors.h"
#include "server/json_fields.h"
#include "server/openai_request.h"

namespace tandem::server {
namespace {

using OJson = nlohmann::ordered_json;

constexpr int kMaxStopSequences = 16;  // as many as the OpenAI route's `stop`

[[noreturn]] void wrong_type(const std::string& field, const char* expected, const OJson& got) {
  bad_request(field, fmt::format("'{}' must be {}, got {}", field, expected, json_type_name(got)),
              "invalid_type");
}

[[noreturn]] void missing(const std::string& field) {
  bad_request(field, fmt::format("'{}' is required", field), "missing_required_parameter");
}

const OJson* member(const OJson& object, const char* key) {
  return ordered_member(object, key);
}

/// A required string member of `object` (at `where`).
std::string string_member(const OJson& object, const char* key, const std::string& where,
                          bool non_empty = false) {
  const std::string field = where + "." + key;
  const OJson* v = member(object, key);
  if (!v) missing(field);
  if (!v->is_string() || (non_empty && v->get_ref<const std::string&>().empty()))
    wrong_type(field, non_empty ? "a non-empty string" : "a string", *v);
  return v->get<std::string>();
}

/// The type of a content block, after checking that it is an object with a string "type".
std::string block_type(const OJson& block, const std::string& where) {
  if (!block.is_object()) wrong_type(where, "a content block (an object with a 'type')", block);
  return string_member(block, "type", where);
}

[[noreturn]] void unsupported_block(const std::string& where, const std::string& type, const char* role,
                                    const char* allowed) {
  bad_request(where + ".type",
              fmt::format("content block type '{}' is not supported in {} messages (supported: {})", type,
                          role, allowed),
              "unsupported");
}

/// The text of a string or of a list of text blocks (system, a tool_result's content), concatenated as the
/// OpenAI route concatenates content parts.
std::string text_of(const OJson& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) wrong_type(where, "a string or a list of text blocks", v);
  std::string text;
  for (size_t j = 0; j < v.size(); ++j) {
    const std::string bw = fmt::format("{}[{}]", where, j);
    const std::string type = block_type(v[j], bw);
    if (type != "text")
      bad_request(bw + ".type",
                  fmt::format("content block type '{}' is not supported here (text only)", type),
                  "unsupported");
    text += string_member(v[j], "text", bw);
  }
  return text;
}

/// Messages in the chat template's terms, and the ids of the tool_use blocks seen so far.
class MessageConverter {
 public:
  void add(const OJson& m, size_t i) {
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) wrong_type(where, "an object", m);
    const std::string role = string_member(m, "role", where);
    const OJson* content = member(m, "content");
    if (!content) missing(where + ".content");
    if (role == "user") {
      user(*content, where + ".content");
    } else if (role == "assistant") {
      assistant(*content, where + ".content");
    } else {
      bad_request(where + ".role",
                  fmt::format("'{}.role' must be \"user\" or \"assistant\", got \"{}\"{}", where, role,
                              role == "system" ? " (the system prompt is the top-level 'system')" : ""));
    }
  }

  OJson take() { return std::move(out_); }

 private:
  void user(const OJson& content, const std::string& where) {
    if (content.is_string()) {
      out_.push_back({{"role", "user"}, {"content", content}});
      return;
    }
    if (!content.is_array()) wrong_type(where, "a string or a list of content blocks", content);
    if (content.empty()) bad_request(where, fmt::format("'{}' must not be empty", where));
    std::string text;
    bool has_text = false;
    auto flush = [&] {
      if (has_text) out_.push_back({{"role", "user"}, {"content", text}});
      text.clear();
      has_text = false;
    };
    for (size_t j = 0; j < content.size(); ++j) {
      const std::string bw = fmt::format("{}[{}]", where, j);
      const OJson& block = content[j];
      const std::string type = block_type(block, bw);
      if (type == "text") {
        text += string_member(block, "text", bw);
        has_text = true;
      } else if (type == "tool_result") {
        flush();  // the conversation's order is kept: text before a result is an earlier user message
        out_.push_back(tool_result(block, bw));
      } else {
        unsupported_block(bw, type, "user", "text, tool_result");
      }
    }
    flush();
  }

  OJson tool_result(const OJson& block, const std::string& where) {
    const std::string id = string_member(block, "tool_use_id", where);
    if (!tool_use_ids_.count(id))
      bad_request(
          where + ".tool_use_id",
          fmt::format("'{}.tool_use_id' \"{}\" answers no tool_use: it must be the id of a tool_use block "
                      "of an earlier assistant message",
                      where, id));
    std::string text;
    if (const OJson* c = member(block, "content")) text = text_of(*c, where + ".content");
    if (const OJson* e = member(block, "is_error"); e && !e->is_boolean())
      wrong_type(where + ".is_error", "a boolean", *e);
    return {{"role", "tool"}, {"tool_call_id", id}, {"content", text}};
  }

  void assistant(const OJson& content, const std::string& where) {
    if (content.is_string()) {
      out_.push_back({{"role", "assistant"}, {"content", content}});
      return;
    }
    if (!content.is_array()) wrong_type(where, "a string or a list of content blocks", content);
    std::string text, reasoning;
    OJson calls = OJson::array();
    for (size_t j = 0; j < content.size(); ++j) {
      const std::string bw = fmt::format("{}[{}]", where, j);
      const OJson& block = content[j];
      const std::string type = block_type(block, bw);
      if (type == "text") {
        text += string_member(block, "text", bw);
      } else if (type == "thinking") {
        reasoning += string_member(block, "thinking", bw);
        if (const OJson* s = member(block, "signature"); s && !s->is_string())
          wrong_type(bw + ".signature", "a string", *s);
      } else if (type == "redacted_thinking") {
        (void)string_member(block, "data", bw);  // opaque to this server: nothing to render
      } else if (type == "tool_use") {
        calls.push_back(tool_use(block, bw));
      } else {
        unsupported_block(bw, type, "assistant", "text, thinking, redacted_thinking, tool_use");
      }
    }
    OJson msg = {{"role", "assistant"}, {"content", text}};
    if (!reasoning.empty()) msg["reasoning_content"] = reasoning;
    if (!calls.empty()) msg["tool_calls"] = std::move(calls);
    out_.push_back(std::move(msg));
  }

  OJson tool_use(const OJson& block, const std::string& where) {
    const std::string id = string_member(block, "id", where, /*non_empty=*/true);
    const std::string name = string_member(block, "name", where, /*non_empty=*/true);
    const OJson* input = member(block, "input");
    if (!input) missing(where + ".input");
    if (!input->is_object()) wrong_type(where + ".input", "an object", *input);
    tool_use_ids_.insert(id);
    return {{"id", id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", *input}}}};
  }

  OJson out_ = OJson::array();
  std::set<std::string> tool_use_ids_;
};

/// `tools` as OpenAI function tools, and their names.
OJson convert_tools(const OJson& tools, std::set<std::string>& names) {
  if (!tools.is_array()) wrong_type("tools", "a list", tools);
  OJson out = OJson::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string where = fmt::format("tools[{}]", i);
    const OJson& tool = tools[i];
    if (!tool.is_object()) wrong_type(where, "an object", tool);
    if (const OJson* type = member(tool, "type"); type && *type != "custom")
      bad_request(
          where + ".type",
          fmt::format("tool type {} is not supported: this server runs client tools only ({{\"name\", "
                      "\"description\", \"input_schema\"}}, type \"custom\" or absent)",
                      type->dump()),
          "unsupported");
    const std::string name = string_member(tool, "name", where);
    if (!parsers::valid_function_name(name))
      bad_request(
          where + ".name",
          fmt::format("'{}.name' \"{}\" is not a tool name: 1 to {} bytes without whitespace or any of "
                      "<>\"'{{}}[]()=,;`",
                      where, name, parsers::kMaxNameBytes));
    if (!names.insert(name).second)
      bad_request(where + ".name", fmt::format("two tools are named '{}'", name));
    OJson fn = {{"name", name}};
    if (const OJson* d = member(tool, "description")) {
      if (!d->is_string()) wrong_type(where + ".description", "a string", *d);
      fn["description"] = *d;
    }
    const OJson* schema = member(tool, "input_schema");
    if (!schema) missing(where + ".input_schema");
    if (!schema->is_object()) wrong_type(where + ".input_schema", "a JSON schema object", *schema);
    if (const OJson* t = member(*schema, "type"); t && *t != "object")
      bad_request(where + ".input_schema.type",
                  fmt::format("'{}.input_schema.type' must be \"object\", got {}", where, t->dump()));
    if (const OJson* p = member(*schema, "properties"); p && !p->is_object())
      wrong_type(where + ".input_schema.properties", "an object", *p);
    fn["parameters"] = *schema;
    out.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  return out;
}

/// OpenAI's tool_choice for Anthropic's ("auto" or "none"); any and tool are refused.
std::string convert_tool_choice(const OJson& choice, const std::set<std::string>& names) {
  if (!choice.is_object()) wrong_type("tool_choice", "an object {\"type\": ...}", choice);
  const std::string type = string_member(choice, "type", "tool_choice");
  if (const OJson* p = member(choice, "disable_parallel_tool_use"); p && !p->is_boolean())
    wrong_type("tool_choice.disable_parallel_tool_use", "a boolean", *p);  // checked; not enforced
  if (type == "auto" || type == "none") return type;
  if (type == "tool") {
    const std::string name = string_member(choice, "name", "tool_choice");
    if (!names.count(name))
      bad_request("tool_choice.name",
                  fmt::format("'tool_choice' names the tool '{}', which is not in 'tools'", name));
  } else if (type != "any") {
    bad_request("tool_choice.type", fmt::format("'tool_choice.type' must be \"auto\", \"any\", \"tool\" or "
                                                "\"none\", got \"{}\"",
                                                type));
  }
  bad_request(
      "tool_choice",
      fmt::format("tool_choice {{\"type\": \"{}\"}} is not supported: forcing a tool call needs decoding "
                  "constrained to the tool-call syntax, which this server does not implement; use "
                  "\"auto\" or \"none\"",
                  type),
      "unsupported");
}

/// enable_thinking for the chat template.
bool convert_thinking(const OJson& thinking) {
  if (!thinking.is_object()) wrong_type("thinking", "an object {\"type\": ...}", thinking);
  const std::string type = string_member(thinking, "type", "thinking");
  if (type == "enabled") {
    const OJson* budget = member(thinking, "budget_tokens");
    if (!budget) missing("thinking.budget_tokens");
    const bool positive = budget->is_number_unsigned()
                              ? budget->get<uint64_t>() >= 1
                              : budget->is_number_integer() && budget->get<int64_t>() >= 1;
    if (!positive)
      bad_request("thinking.budget_tokens",
                  fmt::format("'thinking.budget_tokens' must be a positive integer, got {}", budget->dump()));
    return true;
  }
  if (type == "adaptive") return true;
  if (type == "disabled") return false;
  bad_request(
      "thinking.type",
      fmt::format("'thinking.type' must be \"enabled\", \"adaptive\" or \"disabled\", got \"{}\"", type));
}

std::vector<std::string> read_stop_sequences(const nlohmann::json* v) {
  std::vector<std::string> stops;
  if (!v) return stops;
  if (!v->is_array()) wrong_type("stop_sequences", "a list of strings", *v);
  if (static_cast<int>(v->size()) > kMaxStopSequences)
    bad_request("stop_sequences",
                fmt::format("at most {} stop sequences are allowed, got {}", kMaxStopSequences, v->size()));
  for (size_t i = 0; i < v->size(); ++i) {
    const nlohmann::json& s = (*v)[i];
    if (!s.is_string()) wrong_type(fmt::format("stop_sequences[{}]", i), "a string", s);
    if (s.get_ref<const std::string&>().empty())
      bad_request(fmt::format("stop_sequences[{}]", i), "stop sequences must not be empty");
    stops.push_back(s.get<std::string>());
  }
  return stops;
}

}  // namespace

OJson anthropic_chat_body(const OJson& body) {
  const OJson* messages = member(body, "messages");
  if (!messages) missing("messages");
  if (!messages->is_array()) wrong_type("messages", "a list", *messages);
  if (messages->empty()) bad_request("messages", "'messages' must not be empty");

  MessageConverter conv;
  OJson system_prompt;
  if (const OJson* s = member(body, "system")) {
    const std::string text = text_of(*s, "system");
    if (!text.empty()) system_prompt = {{"role", "system"}, {"content", text}};
  }
  for (size_t i = 0; i < messages->size(); ++i) conv.add((*messages)[i], i);
  if (const OJson& last = messages->back(); last.is_object() && last.value("role", "") == "assistant")
    bad_request(
        fmt::format("messages[{}]", messages->size() - 1),
        "the last message is an assistant message: continuing it (prefill) is not supported; end with "
        "a user message");
  OJson chat_messages = conv.take();
  if (!system_prompt.is_null()) chat_messages.insert(chat_messages.begin(), std::move(system_prompt));

  OJson chat = {{"messages", std::move(chat_messages)}};
  std::set<std::string> names;
  if (const OJson* tools = member(body, "tools")) chat["tools"] = convert_tools(*tools, names);
  if (const OJson* choice = member(body, "tool_choice"))
    chat["tool_choice"] = convert_tool_choice(*choice, names);
  if (const OJson* thinking = member(body, "thinking"))
    chat["chat_template_kwargs"] = {{"enable_thinking", convert_thinking(*thinking)}};
  return chat;
}

MessagesRequest parse_messages_request(const ServerContext& ctx, const OJson& body) {
  const nlohmann::json sorted = body;  // for the typed field getters; the template gets `body`'s order
  const JsonFields f(
      sorted, "",
      {"model", "max_tokens", "messages", "system", "tools", "tool_choice", "stop_sequences", "temperature",
       "top_p", "top_k", "stream", "metadata", "thinking", "service_tier", "cache_control", "speculative"});
  check_model_name(ctx, f);
  if (!f.raw("max_tokens")) missing("max_tokens");
  const int64_t max_tokens = *f.integer("max_tokens");
  if (const nlohmann::json* m = f.raw("metadata")) {
    const JsonFields mf(*m, "metadata.", {"user_id"});
    (void)mf.string("user_id");
  }
  (void)f.string("service_tier");

  MessagesRequest req;
  req.stream = f.boolean("stream").value_or(false);
  const ChatPrompt prompt =
      render_chat_prompt(ctx, anthropic_chat_body(body), /*add_generation_prompt=*/true);
  ChatInput input = chat_input(ctx, prompt, "messages");
  req.prompt = std::move(input.prompt);
  req.output = std::move(input.output);

  engine::GenerateRequest& r = req.choice.request;
  sampling::SamplingParams& s = r.sampling;
  if (auto v = f.number("temperature")) {
    f.check_range("temperature", *v, 0.0, 1.0);
    s.temperature = static_cast<float>(*v);
  }
  if (auto v = f.number("top_p")) {
    f.check_range("top_p", *v, 0.0, 1.0, /*lo_open=*/true);
    s.top_p = static_cast<float>(*v);
  }
  if (auto v = f.integer("top_k")) {
    if (*v < 0) bad_request("top_k", fmt::format("'top_k' must be >= 0 (0: off), got {}", *v));
    s.top_k = static_cast<int>(std::min<int64_t>(*v, INT32_MAX));
  }
  if (const auto bad = s.invalid_param()) bad_request(bad->field, bad->reason);
  if (auto v = f.boolean("speculative")) r.speculative = *v;
  req.choice.text.stop = read_stop_sequences(f.raw("stop_sequences"));
  keep_parser_tags(ctx, req.output, req.choice.text);
  r.prompt = req.prompt;
  r.max_tokens = resolve_max_tokens(max_tokens, 0, static_cast<int64_t>(req.prompt.size()),
                                    ctx.max_model_len(), "max_tokens");
  return req;
}

int64_t count_message_tokens(const ServerContext& ctx, const OJson& body) {
  const nlohmann::json sorted = body;
  const JsonFields f(sorted, "",
                     {"model", "messages", "system", "tools", "tool_choice", "thinking", "cache_control"});
  check_model_name(ctx, f);
  const ChatPrompt prompt =
      render_chat_prompt(ctx, anthropic_chat_body(body), /*add_generation_prompt=*/true);
  return static_cast<int64_t>(chat_input(ctx, prompt, "messages").prompt.size());
}

}  // namespace tandem::server
