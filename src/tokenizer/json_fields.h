// Typed access to tokenizer.json / tokenizer_config.json fields with errors that name the file path of the field
// (e.g. "tokenizer.json: pre_tokenizer.pretokenizers[1].add_prefix_space: expected a boolean, got string").
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"

namespace tandem::tokenizer::json_fields {

inline std::string path(std::string_view where, std::string_view key) { return fmt::format("{}.{}", where, key); }
inline std::string path(std::string_view where, size_t index) { return fmt::format("{}[{}]", where, index); }

/// The value at `key`, or nullptr if the key is absent or null.
inline const nlohmann::json* find(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

inline const nlohmann::json& require(const nlohmann::json& obj, std::string_view key, std::string_view where) {
  const nlohmann::json* v = find(obj, key);
  if (!v) fail("{}: missing field", path(where, key));
  return *v;
}

inline bool get_bool(const nlohmann::json& obj, std::string_view key, std::string_view where,
                     std::optional<bool> fallback = std::nullopt) {
  const nlohmann::json* v = find(obj, key);
  if (!v) {
    if (fallback) return *fallback;
    fail("{}: missing field", path(where, key));
  }
  if (!v->is_boolean()) fail("{}: expected a boolean, got {}", path(where, key), v->type_name());
  return v->get<bool>();
}

inline std::string get_string(const nlohmann::json& obj, std::string_view key, std::string_view where) {
  const nlohmann::json& v = require(obj, key, where);
  if (!v.is_string()) fail("{}: expected a string, got {}", path(where, key), v.type_name());
  return v.get<std::string>();
}

/// A string field that may be absent or null.
inline std::optional<std::string> get_optional_string(const nlohmann::json& obj, std::string_view key,
                                                      std::string_view where) {
  const nlohmann::json* v = find(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) fail("{}: expected a string or null, got {}", path(where, key), v->type_name());
  return v->get<std::string>();
}

inline int32_t as_id(const nlohmann::json& v, std::string_view where) {
  if (!v.is_number_integer()) fail("{}: expected a token id (integer), got {}", where, v.type_name());
  const auto id = v.get<int64_t>();
  if (id < 0 || id > INT32_MAX) fail("{}: token id {} out of range", where, id);
  return static_cast<int32_t>(id);
}

}  // namespace tandem::tokenizer::json_fields
