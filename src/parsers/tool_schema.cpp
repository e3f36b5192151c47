#include "parsers/tool_schema.h"

#include "parsers/json_stream.h"
#include "parsers/text_scanner.h"

namespace tandem::parsers {
namespace {

ArgTypes type_name_bit(const std::string& name) {
  if (name == "string") return kArgString;
  if (name == "integer") return kArgInteger;
  if (name == "number") return kArgNumber;
  if (name == "boolean") return kArgBoolean;
  if (name == "object") return kArgObject;
  if (name == "array") return kArgArray;
  if (name == "null") return kArgNull;
  return 0;
}

ArgTypes value_type_bit(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::string: return kArgString;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: return kArgInteger;
    case nlohmann::json::value_t::number_float: return kArgNumber;
    case nlohmann::json::value_t::boolean: return kArgBoolean;
    case nlohmann::json::value_t::object: return kArgObject;
    case nlohmann::json::value_t::array: return kArgArray;
    case nlohmann::json::value_t::null: return kArgNull;
    default: return 0;
  }
}

// The type of a compact JSON value from its first byte, and whether a number is written as an integer.
ArgTypes json_text_type(std::string_view json) {
  switch (json.front()) {
    case '{': return kArgObject;
    case '[': return kArgArray;
    case '"': return kArgString;
    case 't':
    case 'f': return kArgBoolean;
    case 'n': return kArgNull;
    default:
      return json.find_first_of(".eE") == std::string_view::npos ? ArgTypes(kArgInteger | kArgNumber) : kArgNumber;
  }
}

}  // namespace

ArgTypes schema_types(const nlohmann::json& schema) {
  if (!schema.is_object()) return 0;
  ArgTypes t = 0;
  if (auto it = schema.find("type"); it != schema.end()) {
    if (it->is_string()) t |= type_name_bit(it->get<std::string>());
    if (it->is_array()) {
      for (const auto& n : *it) {
        if (n.is_string()) t |= type_name_bit(n.get<std::string>());
      }
    }
  }
  for (const char* key : {"anyOf", "oneOf"}) {
    if (auto it = schema.find(key); it != schema.end() && it->is_array()) {
      for (const auto& alt : *it) t |= schema_types(alt);
    }
  }
  if (t == 0) {
    if (auto it = schema.find("enum"); it != schema.end() && it->is_array()) {
      for (const auto& v : *it) t |= value_type_bit(v);
    }
    if (auto it = schema.find("const"); it != schema.end()) t |= value_type_bit(*it);
  }
  return t;
}

ToolSchemas ToolSchemas::from_openai_tools(const nlohmann::json& tools) {
  ToolSchemas s;
  if (!tools.is_array()) return s;
  for (const auto& tool : tools) {
    if (!tool.is_object()) continue;
    const auto fn = tool.find("function");
    if (fn == tool.end() || !fn->is_object()) continue;
    const auto name = fn->find("name");
    if (name == fn->end() || !name->is_string()) continue;
    auto& params = s.params_[name->get<std::string>()];
    const auto parameters = fn->find("parameters");
    if (parameters == fn->end() || !parameters->is_object()) continue;
    const auto props = parameters->find("properties");
    if (props == parameters->end() || !props->is_object()) continue;
    for (const auto& [key, schema] : props->items()) params[key] = schema_types(schema);
  }
  return s;
}

ArgTypes ToolSchemas::types(std::string_view function, std::string_view param) const {
  const auto f = params_.find(function);
  if (f == params_.end()) return 0;
  const auto p = f->second.find(param);
  return p == f->second.end() ? 0 : p->second;
}

std::string typed_argument_json(std::string_view raw, ArgTypes types) {
  if (!is_string_only(types)) {
    const std::string_view text = trim(raw);
    std::string json;
    if (text == "True" || text == "False" || text == "None") {
      json = text == "True" ? "true" : text == "False" ? "false" : "null";
    } else if (!text.empty()) {
      JsonStreamer reader;
      JsonStreamer::Status status;
      const size_t used = reader.push(text, status);
      if (status != JsonStreamer::Status::kError && used == text.size() && reader.end_of_input()) json = reader.take();
    }
    if (!json.empty() && (json_text_type(json) & types & ~kArgString) != 0) return json;
  }
  return json_quote(raw);
}

}  // namespace tandem::parsers
