#include "server/chat_messages.h"

#include <fmt/format.h>

#include <set>
#include <string>

#include "server/errors.h"
#include "server/json_fields.h"

namespace tandem::server {
namespace {

using OJson = nlohmann::ordered_json;

std::string type_name(const OJson& j) {
  return json_type_name(j);
}

[[noreturn]] void wrong_type(const std::string& field, const char* expected, const OJson& got) {
  bad_request(field, fmt::format("'{}' must be {}, got {}", field, expected, type_name(got)), "invalid_type");
}

[[noreturn]] void missing(const std::string& field) {
  bad_request(field, fmt::format("'{}' is required", field), "missing_required_parameter");
}

// A string, null, or a list of text parts (flattened to their text).
OJson content_text(const OJson& v, const std::string& where) {
  if (v.is_string() || v.is_null()) return v;
  if (!v.is_array()) wrong_type(where, "a string or a list of content parts", v);
  std::string text;
  for (size_t j = 0; j < v.size(); ++j) {
    const auto& part = v[j];
    const std::string pw = fmt::format("{}[{}]", where, j);
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string())
      bad_request(pw, fmt::format("'{}' must be an object with a 'type'", pw));
    if (part["type"] != "text")
      bad_request(
          pw + ".type",
          fmt::format("content part type '{}' is not supported (text only)", part["type"].get<std::string>()),
          "unsupported");
    if (!part.contains("text") || !part["text"].is_string())
      bad_request(pw + ".text", fmt::format("'{}.text' must be a string", pw), "invalid_type");
    text += part["text"].get<std::string>();
  }
  return text;
}

// One entry of an assistant message's tool_calls, with `arguments` as an object; its id goes to `ids`.
OJson tool_call(const OJson& call, const std::string& where, std::set<std::string>& ids) {
  if (!call.is_object()) wrong_type(where, "an object", call);
  const OJson* id = ordered_member(call, "id");
  if (!id) missing(where + ".id");
  if (!id->is_string() || id->get_ref<const std::string&>().empty())
    wrong_type(where + ".id", "a non-empty string", *id);
  if (const OJson* type = ordered_member(call, "type"); type && *type != "function")
    bad_request(where + ".type", fmt::format("'{}.type' must be \"function\", got {}", where, type->dump()));
  const OJson* fn = ordered_member(call, "function");
  if (!fn) missing(where + ".function");
  if (!fn->is_object()) wrong_type(where + ".function", "an object", *fn);
  const std::string fw = where + ".function";
  const OJson* name = ordered_member(*fn, "name");
  if (!name) missing(fw + ".name");
  if (!name->is_string() || name->get_ref<const std::string&>().empty())
    wrong_type(fw + ".name", "a non-empty string", *name);
  const OJson* args = ordered_member(*fn, "arguments");
  if (!args) missing(fw + ".arguments");
  OJson parsed;
  if (args->is_string()) {
    parsed = parse_json_field(args->get<std::string>(), fw + ".arguments");
    if (!parsed.is_object())
      bad_request(fw + ".arguments",
                  fmt::format("'{}.arguments' must be a JSON object, got {}", fw, type_name(parsed)));
  } else if (args->is_object()) {
    parsed = *args;
  } else {
    wrong_type(fw + ".arguments", "a JSON object or its text", *args);
  }
  ids.insert(id->get<std::string>());
  OJson out = call;
  out["function"]["arguments"] = std::move(parsed);
  return out;
}

}  // namespace

OJson template_messages(const OJson& messages) {
  if (!messages.is_array())
    bad_request("messages", fmt::format("'messages' must be a list, got {}", type_name(messages)),
                "invalid_type");
  if (messages.empty()) bad_request("messages", "'messages' must not be empty");
  std::set<std::string> call_ids;  // of the tool calls so far
  OJson out = OJson::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) wrong_type(where, "an object", m);
    const auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      bad_request(where + ".role", fmt::format("'{}.role' is required and must be a string", where));
    const std::string r = role->get<std::string>();
    if (r != "system" && r != "user" && r != "assistant" && r != "tool" && r != "developer")
      bad_request(where + ".role",
                  fmt::format("'{}.role' must be one of system, developer, user, assistant, tool; got '{}'",
                              where, r));
    OJson msg = OJson::object();
    for (const auto& [k, v] : m.items()) {
      if (k == "content") {
        msg[k] = content_text(v, where + ".content");
      } else if (k == "tool_calls" && r == "assistant" && !v.is_null()) {
        if (!v.is_array()) wrong_type(where + ".tool_calls", "a list", v);
        OJson calls = OJson::array();
        for (size_t j = 0; j < v.size(); ++j)
          calls.push_back(tool_call(v[j], fmt::format("{}.tool_calls[{}]", where, j), call_ids));
        msg[k] = std::move(calls);
      } else if (k == "reasoning_content" && r == "assistant" && !v.is_null() && !v.is_string()) {
        wrong_type(where + ".reasoning_content", "a string", v);
      } else {
        msg[k] = v;
      }
    }
    if (!msg.contains("content") && r != "assistant") missing(where + ".content");
    if (r == "tool") {
      const OJson* id = ordered_member(msg, "tool_call_id");
      if (!id) missing(where + ".tool_call_id");
      if (!id->is_string()) wrong_type(where + ".tool_call_id", "a string", *id);
      if (!call_ids.count(id->get<std::string>()))
        bad_request(
            where + ".tool_call_id",
            fmt::format("'{}.tool_call_id' {} answers no tool call: it must be the id of a tool call of an "
                        "earlier assistant message",
                        where, id->dump()));
    }
    out.push_back(std::move(msg));
  }
  return out;
}

}  // namespace tandem::server
