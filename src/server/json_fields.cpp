#include "server/json_fields.h"

#include <fmt/format.h>

#include <cmath>

#include "server/errors.h"

namespace tandem::server {

namespace {

constexpr int kMaxDepth = 64;           // JSON nesting accepted in a request body
constexpr int kMaxOrderedKeys = 4096;  // keys of one object in an order-keeping parse

// Deep nesting is rejected while parsing: copying, dumping or rendering a million nested arrays recurses
// once per level and would overflow the handler thread's stack.
void check_depth(int depth, const std::string& what, const std::string& param) {
  if (depth > kMaxDepth)
    throw ApiError(400, fmt::format("{} nests deeper than {} levels", what, kMaxDepth), param, "invalid_json");
}

// `what` names the text in messages ("the request body"); `param` is the error's param.
template <class Json, class Callback>
Json parse_with(const std::string& text, Callback callback, const std::string& what, const std::string& param) {
  try {
    return Json::parse(text, callback);
  } catch (const nlohmann::json::parse_error& e) {
    throw ApiError(400, fmt::format("{} is not valid JSON: {}", what, e.what()), param, "invalid_json");
  }
}

nlohmann::ordered_json parse_ordered(const std::string& text, const std::string& what, const std::string& param) {
  using Event = nlohmann::ordered_json::parse_event_t;
  std::vector<int> keys;  // per open object, the keys read so far
  auto guard = [&](int depth, Event event, nlohmann::ordered_json&) {
    check_depth(depth, what, param);
    if (event == Event::object_start) keys.push_back(0);
    if (event == Event::object_end && !keys.empty()) keys.pop_back();
    if (event == Event::key && !keys.empty() && ++keys.back() > kMaxOrderedKeys)
      throw ApiError(400, fmt::format("an object in {} has more than {} keys", what, kMaxOrderedKeys), param,
                     "invalid_json");
    return true;
  };
  return parse_with<nlohmann::ordered_json>(text, guard, what, param);
}

}  // namespace

nlohmann::json parse_body(const std::string& body) {
  auto guard = [](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    check_depth(depth, "the request body", "");
    return true;
  };
  return parse_with<nlohmann::json>(body, guard, "the request body", "");
}

nlohmann::ordered_json parse_body_ordered(const std::string& body) {
  return parse_ordered(body, "the request body", "");
}

nlohmann::ordered_json parse_json_field(const std::string& text, const std::string& param) {
  return parse_ordered(text, "'" + param + "'", param);
}

const nlohmann::ordered_json* ordered_member(const nlohmann::ordered_json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(std::string(key));
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string dump_json(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string json_type_name(const nlohmann::json& j) {
  if (j.is_number_integer()) return "integer";
  if (j.is_number()) return "number";
  return j.type_name();
}

std::string json_type_name(const nlohmann::ordered_json& j) {
  if (j.is_number_integer()) return "integer";
  if (j.is_number()) return "number";
  return j.type_name();
}

JsonFields::JsonFields(const nlohmann::json& j, std::string prefix, std::initializer_list<std::string_view> allowed)
    : j_(j), prefix_(std::move(prefix)) {
  const std::string where = prefix_.empty() ? "the request body" : "'" + prefix_.substr(0, prefix_.size() - 1) + "'";
  if (!j_.is_object())
    bad_request(prefix_.empty() ? "" : prefix_.substr(0, prefix_.size() - 1),
                fmt::format("{} must be a JSON object, got {}", where, json_type_name(j_)), "invalid_type");
  for (const auto& [k, v] : j_.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || a == k;
    if (!known) bad_request(name(k), fmt::format("Unrecognized request argument supplied: {}", name(k)), "unknown_parameter");
  }
}

const nlohmann::json* JsonFields::raw(std::string_view key) const {
  const auto it = j_.find(key);
  if (it == j_.end() || it->is_null()) return nullptr;
  return &*it;
}

namespace {

[[noreturn]] void wrong_type(const std::string& field, const char* expected, const nlohmann::json& got) {
  bad_request(field, fmt::format("'{}' must be {}, got {}", field, expected, json_type_name(got)), "invalid_type");
}

}  // namespace

std::optional<double> JsonFields::number(std::string_view key) const {
  const nlohmann::json* v = raw(key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(name(key), "a number", *v);
  const double d = v->get<double>();
  if (!std::isfinite(d)) bad_request(name(key), fmt::format("'{}' must be finite", name(key)));
  return d;
}

std::optional<int64_t> JsonFields::integer(std::string_view key) const {
  const nlohmann::json* v = raw(key);
  if (!v) return std::nullopt;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      bad_request(name(key), fmt::format("'{}' is out of range", name(key)));
    return v->get<int64_t>();
  }
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
  }
  wrong_type(name(key), "an integer", *v);
}

std::optional<bool> JsonFields::boolean(std::string_view key) const {
  const nlohmann::json* v = raw(key);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong_type(name(key), "a boolean", *v);
  return v->get<bool>();
}

std::optional<std::string> JsonFields::string(std::string_view key) const {
  const nlohmann::json* v = raw(key);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrong_type(name(key), "a string", *v);
  return v->get<std::string>();
}

std::vector<std::string> JsonFields::string_or_list(std::string_view key) const {
  std::vector<std::string> out;
  const nlohmann::json* v = raw(key);
  if (!v) return out;
  if (v->is_string()) {
    if (!v->get_ref<const std::string&>().empty()) out.push_back(v->get<std::string>());
    return out;
  }
  if (!v->is_array()) wrong_type(name(key), "a string or a list of strings", *v);
  for (const auto& e : *v) {
    if (!e.is_string()) wrong_type(name(key) + "[]", "a string", e);
    if (!e.get_ref<const std::string&>().empty()) out.push_back(e.get<std::string>());
  }
  return out;
}

std::optional<std::vector<int32_t>> JsonFields::int_list(std::string_view key, int64_t lo, int64_t hi) const {
  const nlohmann::json* v = raw(key);
  if (!v) return std::nullopt;
  if (!v->is_array()) wrong_type(name(key), "a list of integers", *v);
  std::vector<int32_t> out;
  out.reserve(v->size());
  for (const auto& e : *v) {
    if (!e.is_number_integer()) wrong_type(name(key) + "[]", "an integer", e);
    const int64_t x = e.is_number_unsigned() && e.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                          ? INT64_MAX
                          : e.get<int64_t>();
    if (x < lo || x > hi)
      bad_request(name(key), fmt::format("'{}' contains {}, outside [{}, {}]", name(key), x, lo, hi));
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

void JsonFields::check_range(std::string_view key, double v, double lo, double hi, bool lo_open,
                             bool hi_open) const {
  const bool ok = (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  if (!ok)
    bad_request(name(key), fmt::format("'{}' must be in {}{}, {}{}, got {}", name(key), lo_open ? '(' : '[', lo, hi,
                                       hi_open ? ')' : ']', v));
}

}  // namespace tandem::server
