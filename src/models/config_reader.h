// Typed, strict access to a Hugging Face config.json. Every read states whether the key is required; a
// value of the wrong type, or one tandem does not implement, is an error naming the key and the value.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
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

  /// Returns v when lo <= v <= hi (lo < v with lo_open), else fails naming where(), the key, the range and v:
  /// "config.json: 'rms_norm_eps' must be in (0, 1), got -1". For values already read (or derived) from
  /// `key`.
  template <typename T>
  T check_range(const std::string& key, T v, T lo, T hi, bool lo_open = false, bool hi_open = false) const {
    const bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);  // false for NaN
    if (!ok)
      fail("{}: '{}' must be in {}{}, {}{}, got {}", where_, key, lo_open ? '(' : '[', lo, hi,
           hi_open ? ')' : ']', v);
    return v;
  }

 private:
  // Integers are range-checked before narrowing (4294967300 must not become 4 in an int) and floats must be
  // finite in T: a value the field's type cannot hold is an error, never a wrapped or infinite one.
  template <typename T>
  T convert(const std::string& key, const nlohmann::json& v) const {
    if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) fail("{}: '{}' must be a boolean, got {}", where_, key, v.dump());
      return v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) fail("{}: '{}' must be an integer, got {}", where_, key, v.dump());
      const bool fits = v.is_number_unsigned()
                            ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
                            : v.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                                  (std::is_unsigned_v<T> ||
                                   v.get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<T>::max()));
      if (!fits)
        fail("{}: '{}' = {} is out of range (a {}-bit {} integer)", where_, key, v.dump(), 8 * sizeof(T),
             std::is_signed_v<T> ? "signed" : "unsigned");
      return v.get<T>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) fail("{}: '{}' must be a number, got {}", where_, key, v.dump());
      const double d = v.get<double>();
      if (!std::isfinite(d) || std::abs(d) > static_cast<double>(std::numeric_limits<T>::max()))
        fail("{}: '{}' = {} is out of range (not a finite {}-bit float)", where_, key, v.dump(),
             8 * sizeof(T));
      return static_cast<T>(d);
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
