// Typed, validating access to the fields of a JSON request object. Every failure is a 400 ApiError whose
// `param` names the field with its path ("stream_options.include_usage"), so a client sees which field and
// why: "'temperature' must be a number, got string".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::server {

/// Parses a request body; malformed JSON is a 400 naming the parser's position.
nlohmann::json parse_body(const std::string& body);
/// The same, keeping every object's keys in the order the client sent them: what reaches a chat template
/// (messages, tools, chat_template_kwargs) must not be re-sorted. An object with more than 4096 keys is a 400
/// (an ordered object finds a key by a linear scan, so a huge one would make parsing quadratic).
nlohmann::ordered_json parse_body_ordered(const std::string& body);
/// JSON text inside a request (e.g. tool-call arguments sent as a string), parsed like parse_body_ordered; a
/// failure is a 400 naming `param`.
nlohmann::ordered_json parse_json_field(const std::string& text, const std::string& param);
/// The member `key` of an order-keeping body; nullptr when absent or null.
const nlohmann::ordered_json* ordered_member(const nlohmann::ordered_json& object, std::string_view key);

/// Compact JSON text; invalid UTF-8 (a lone byte of a multi-byte character in a token's text) becomes U+FFFD
/// instead of throwing.
std::string dump_json(const nlohmann::json& j);
std::string dump_json(const nlohmann::ordered_json& j);

/// JSON type name as a client would say it ("string", "integer", "array", ...).
std::string json_type_name(const nlohmann::json& j);
std::string json_type_name(const nlohmann::ordered_json& j);

class JsonFields {
 public:
  /// `j` must be an object (400 otherwise). `prefix` is prepended to field names in messages ("" at top).
  /// Keys outside `allowed` are rejected ("Unrecognized request argument supplied: x") — OpenAI's behaviour.
  JsonFields(const nlohmann::json& j, std::string prefix, std::initializer_list<std::string_view> allowed);

  /// Each getter returns nullopt when the key is absent or null, and throws 400 on a wrong type.
  std::optional<double> number(std::string_view key) const;
  std::optional<int64_t> integer(std::string_view key) const;  // integral JSON numbers only (3.0 is 3)
  std::optional<bool> boolean(std::string_view key) const;
  std::optional<std::string> string(std::string_view key) const;
  /// The value when present and not null; any type.
  const nlohmann::json* raw(std::string_view key) const;
  /// A string or a list of strings (OpenAI's `stop`); empty strings are dropped.
  std::vector<std::string> string_or_list(std::string_view key) const;
  /// A list of integers (token ids), each in [lo, hi].
  std::optional<std::vector<int32_t>> int_list(std::string_view key, int64_t lo, int64_t hi) const;

  /// Range checks, 400 naming the field: lo <= v <= hi (inclusive unless the flags say otherwise).
  void check_range(std::string_view key, double v, double lo, double hi, bool lo_open = false,
                   bool hi_open = false) const;

  std::string name(std::string_view key) const { return prefix_ + std::string(key); }

 private:
  const nlohmann::json& j_;
  std::string prefix_;
};

}  // namespace tandem::server
