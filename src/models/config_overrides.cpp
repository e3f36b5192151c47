#include "models/config_overrides.h"

#include "core/error.h"
#include "core/json_text.h"

namespace tandem::models {

namespace {

// Keys read from config.json outside the model's config reader.
constexpr const char* kOtherReaders[] = {"quantization_config", "dtype", "torch_dtype"};

}  // namespace

nlohmann::json parse_config_overrides(const std::string& text) {
  if (text.empty()) return nullptr;
  const nlohmann::json j = parse_json_text<nlohmann::json>(text, "--json-model-override-args");
  if (!j.is_object())
    fail("--json-model-override-args must be a JSON object such as '{{\"num_hidden_layers\": 8}}', got {}",
         text);
  return j;
}

void check_config_overrides(const nlohmann::json& overrides, const std::set<std::string>& keys_read) {
  if (overrides.is_null()) return;
  TANDEM_CHECK(overrides.is_object(), "config overrides must be a JSON object, got {}", overrides.dump());
  std::set<std::string> known = keys_read;
  known.insert(std::begin(kOtherReaders), std::end(kOtherReaders));
  for (const auto& [key, value] : overrides.items()) {
    if (known.contains(key)) continue;
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    fail(
        "--json-model-override-args: tandem does not read '{}' from this config.json, so overriding it would "
        "change nothing; keys it reads: {}",
        key, list);
  }
}

}  // namespace tandem::models
