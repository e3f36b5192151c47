// --json-model-override-args (SGLang's name): a JSON object whose keys replace config.json's before the
// config is parsed, e.g. '{"num_hidden_layers": 8}' to run as many layers of a full-size model as fit one GPU
// (the NextN layer then sits at index 8). Only keys tandem reads from this config.json may be overridden: an
// override nothing reads would be silently ignored, so it is an error instead.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>

namespace tandem::models {

/// The flag's text as a JSON object; null for "". Throws tandem::Error for invalid JSON or a non-object.
[[nodiscard]] nlohmann::json parse_config_overrides(const std::string& text);

/// Throws tandem::Error unless every key of `overrides` (an object, or null) is one the config readers read:
/// `keys_read` (as Glm4MoeConfig::from_hf recorded them for this config.json), quantization_config
/// (loader::QuantConfig), dtype / torch_dtype (the unquantized weight dtype). The error names the key and
/// lists the keys that may be overridden.
void check_config_overrides(const nlohmann::json& overrides, const std::set<std::string>& keys_read);

}  // namespace tandem::models
