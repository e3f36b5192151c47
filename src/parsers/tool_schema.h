// Argument types from the request's `tools`, for formats in which the model writes every argument value as
// plain text (GLM <arg_value>, Qwen3-Coder <parameter=...>): the JSON schema decides whether "5" is the number 5
// or the string "5", as the chat templates render non-string values with tojson and strings raw.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace tandem::parsers {

/// The JSON types a schema allows, as bits; 0: unknown (no schema), treated as string.
using ArgTypes = uint8_t;
inline constexpr ArgTypes kArgString = 1;
inline constexpr ArgTypes kArgInteger = 2;
inline constexpr ArgTypes kArgNumber = 4;
inline constexpr ArgTypes kArgBoolean = 8;
inline constexpr ArgTypes kArgObject = 16;
inline constexpr ArgTypes kArgArray = 32;
inline constexpr ArgTypes kArgNull = 64;

/// Parameter types of every function in an OpenAI `tools` array.
class ToolSchemas {
 public:
  ToolSchemas() = default;
  /// `tools`: [{"type": "function", "function": {"name", "parameters": {"properties": {...}}}}, ...]. Entries
  /// that do not have this shape are skipped (the request validator reports them, not the parser). The types of
  /// a property come from "type" (a string or a list), the alternatives of "anyOf"/"oneOf", or else the JSON
  /// types of its "enum"/"const" values.
  static ToolSchemas from_openai_tools(const nlohmann::json& tools);

  /// Types of `param` of `function`; 0 when either is unknown.
  ArgTypes types(std::string_view function, std::string_view param) const;

 private:
  std::map<std::string, std::map<std::string, ArgTypes, std::less<>>, std::less<>> params_;
};

/// The schema types of one JSON schema (see from_openai_tools).
ArgTypes schema_types(const nlohmann::json& schema);

/// True when a value of these types is always a string, so its text can be streamed as a JSON string as it
/// arrives instead of being held until it is complete.
inline bool is_string_only(ArgTypes t) { return t == 0 || (t & ~kArgString) == 0; }

/// The compact JSON for a complete raw argument value: when the schema allows a non-string type and the text
/// (whitespace trimmed) is a JSON value of an allowed type, that value (Python's True/False/None, which
/// Qwen3-Coder's template writes, count as true/false/null); otherwise the text as a JSON string.
std::string typed_argument_json(std::string_view raw, ArgTypes types);

}  // namespace tandem::parsers
