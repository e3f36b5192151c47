// Typed, strict access to a Hugging Face config.json. Every read states whether the key is required; a
// value of the wrong type, or one tandem does not implement, is an error naming the key and the value.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"

namespace tandem::models {

class ConfigReader {
 public:
  /// `keys_read`, when given, collects every key this reader is asked about (through has(), which every read
  /// goes through), present or not.
  ConfigReader(const nlohmann::json& j, std::string where, std::set<std::string>* keys_read = nullptr)
      : j_(j), where_(std::move(where)), keys_read_(keys_read) {}

  bool has(const std::string& key) const {
    if (keys_read_) keys_read_->insert(key);
    return j_.contains(key) && !j_.at(key).is_null();
  }
  const nlohmann::json& raw() const { return j_; }
  const std::string& where() const { return where_; }

  template <typename T>
  T get(const std::string& key) const {
    if (!has(key)) fail("{}: required key '{}' is missing", where_, key);
    return convert<T>(key, j_.at(key));
  }
  template <typename T>
  T get_or(const std::string& key, T fallback) const {
    return has(key) ? convert<T>(key, j_.at(key)) : fallback;
  }
  /// An int or a list of ints (eos_token_id style); empty when absent.
  std::vector<int32_t> int_list(const std::string& key) const;
  /// Fails unless the key is absent, null, or equal to one of `allowed` (string values).
  void require_one_of(const std::string& key, std::initializer_list<const char*> allowed) const;

 private:
  template <typename T>
  T convert(const std::string& key, const nlohmann::json& v) const {
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) fail("{}: '{}' must be a boolean, got {}", where_, key, v.dump());
      return v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) fail("{}: '{}' must be an integer, got {}", where_, key, v.dump());
      return v.get<T>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) fail("{}: '{}' must be a number, got {}", where_, key, v.dump());
      return v.get<T>();
    } else {
      if (!v.is_string()) fail("{}: '{}' must be a string, got {}", where_, key, v.dump());
      return v.get<std::string>();
    }
  }

  const nlohmann::json& j_;
  std::string where_;
  std::set<std::string>* keys_read_;
};

}  // namespace tandem::models
