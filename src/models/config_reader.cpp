#include "models/config_reader.h"

namespace tandem::models {

std::vector<int32_t> ConfigReader::int_list(const std::string& key) const {
  std::vector<int32_t> out;
  if (!has(key)) return out;
  const auto& v = j_.at(key);
  if (v.is_number_integer()) {
    out.push_back(convert<int32_t>(key, v));
  } else if (v.is_array()) {
    for (const auto& e : v) {
      if (!e.is_number_integer()) fail("{}: '{}' must hold integers, got {}", where_, key, v.dump());
      out.push_back(convert<int32_t>(key, e));
    }
  } else {
    fail("{}: '{}' must be an integer or a list of integers, got {}", where_, key, v.dump());
  }
  return out;
}

void ConfigReader::require_one_of(const std::string& key, std::initializer_list<const char*> allowed) const {
  if (!has(key)) return;
  const auto& v = j_.at(key);
  for (const char* a : allowed)
    if (v.is_string() && v.get<std::string>() == a) return;
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
  fail("{}: unsupported {} = {} (tandem implements: {})", where_, key, v.dump(), list);
}

}  // namespace tandem::models
