#include "server/chat_tools.h"

#include <fmt/format.h>

#include <set>

#include "parsers/tool_parser.h"
#include "server/errors.h"
#include "server/json_fields.h"

namespace tandem::server {
namespace {

using OJson = nlohmann::ordered_json;

const OJson* member(const OJson& object, const char* key) {
  return ordered_member(object, key);
}

[[noreturn]] void wrong_type(const std::string& field, const char* expected, const OJson& got) {
  bad_request(field, fmt::format("'{}' must be {}, got {}", field, expected, json_type_name(got)),
              "invalid_type");
}

// The function's name, after checking one entry of `tools`.
std::string check_tool(const OJson& tool, size_t i) {
  const std::string where = fmt::format("tools[{}]", i);
  if (!tool.is_object()) wrong_type(where, "an object", tool);
  const OJson* type = member(tool, "type");
  if (!type)
    bad_request(where + ".type", fmt::format("'{}.type' is required", where), "missing_required_parameter");
  if (!type->is_string() || *type != "function")
    bad_request(where + ".type", fmt::format("'{}.type' must be \"function\", got {}", where, type->dump()));
  const OJson* fn = member(tool, "function");
  if (!fn)
    bad_request(where + ".function", fmt::format("'{}.function' is required", where),
                "missing_required_parameter");
  if (!fn->is_object()) wrong_type(where + ".function", "an object", *fn);
  const std::string fw = where + ".function";
  const OJson* name = member(*fn, "name");
  if (!name)
    bad_request(fw + ".name", fmt::format("'{}.name' is required", fw), "missing_required_parameter");
  if (!name->is_string()) wrong_type(fw + ".name", "a string", *name);
  const std::string n = name->get<std::string>();
  if (!parsers::valid_function_name(n))
    bad_request(fw + ".name",
                fmt::format("'{}.name' {} is not a function name: 1 to {} bytes without whitespace or "
                            "any of <>\"'{{}}[]()=,;`",
                            fw, name->dump(), parsers::kMaxNameBytes));
  if (const OJson* d = member(*fn, "description"); d && !d->is_string())
    wrong_type(fw + ".description", "a string", *d);
  if (const OJson* s = member(*fn, "strict"); s && !s->is_boolean())
    wrong_type(fw + ".strict", "a boolean", *s);
  if (const OJson* p = member(*fn, "parameters")) {
    if (!p->is_object()) wrong_type(fw + ".parameters", "a JSON schema object", *p);
    if (const OJson* props = member(*p, "properties"); props && !props->is_object())
      wrong_type(fw + ".parameters.properties", "an object", *props);
  }
  return n;
}

}  // namespace

ChatTools read_chat_tools(const OJson* tools, const OJson* tool_choice) {
  ChatTools out;
  std::set<std::string> names;
  if (tools) {
    if (!tools->is_array()) wrong_type("tools", "a list", *tools);
    for (size_t i = 0; i < tools->size(); ++i) {
      const std::string name = check_tool((*tools)[i], i);
      if (!names.insert(name).second)
        bad_request(fmt::format("tools[{}].function.name", i), fmt::format("two tools are named '{}'", name));
    }
    out.tools = *tools;
  }

  std::string choice = "auto";
  if (tool_choice) {
    if (tool_choice->is_string()) {
      choice = tool_choice->get<std::string>();
      if (choice != "none" && choice != "auto" && choice != "required")
        bad_request("tool_choice",
                    fmt::format("'tool_choice' must be \"none\", \"auto\", \"required\" or a named "
                                "function, got \"{}\"",
                                choice));
    } else if (tool_choice->is_object()) {
      const OJson* type = member(*tool_choice, "type");
      const OJson* fn = member(*tool_choice, "function");
      const OJson* name = fn && fn->is_object() ? member(*fn, "name") : nullptr;
      if (!type || *type != "function" || !name || !name->is_string())
        bad_request("tool_choice",
                    "a named 'tool_choice' must be {\"type\": \"function\", \"function\": {\"name\": "
                    "...}}");
      if (!names.count(name->get<std::string>()))
        bad_request("tool_choice.function.name",
                    fmt::format("'tool_choice' names the function '{}', which is not in 'tools'",
                                name->get<std::string>()));
      choice = "named";
    } else {
      wrong_type("tool_choice", "a string or an object", *tool_choice);
    }
  }
  if (choice == "required" && names.empty())
    bad_request("tool_choice", "'tool_choice' \"required\" needs a non-empty 'tools'");
  if (choice == "required" || choice == "named")
    bad_request(
        "tool_choice",
        fmt::format("tool_choice {} is not supported: forcing a tool call needs decoding constrained to the "
                    "tool-call syntax, which this server does not implement; use \"auto\" or \"none\"",
                    choice == "named" ? "naming a function" : "\"required\""),
        "unsupported");
  if (choice == "none") {
    out.tools = nullptr;  // the model must not see tools it may not call
    return out;
  }
  out.parse_calls = !names.empty();
  if (out.parse_calls) out.schemas = parsers::ToolSchemas::from_openai_tools(nlohmann::json(*tools));
  return out;
}

}  // namespace tandem::server
