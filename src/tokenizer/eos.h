// End-of-sequence token ids of a checkpoint.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace tandem::tokenizer {

/// eos ids from generation_config.json ("eos_token_id": int or list; may be null) and config.json (same field),
/// merged in that order with duplicates removed. Throws tandem::Error on a malformed field.
std::vector<int32_t> eos_token_ids(const nlohmann::json& config, const nlohmann::json* generation_config);

}  // namespace tandem::tokenizer
