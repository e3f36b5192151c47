#include "tokenizer/eos.h"

#include <algorithm>

#include "tokenizer/json_fields.h"

namespace tandem::tokenizer {
namespace {

void collect(const nlohmann::json& cfg, std::string_view where, std::vector<int32_t>& out) {
  const nlohmann::json* v = json_fields::find(cfg, "eos_token_id");
  if (!v) return;
  const std::string w = json_fields::path(where, "eos_token_id");
  const auto add = [&](const nlohmann::json& x, const std::string& xw) {
    const int32_t id = json_fields::as_id(x, xw);
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  };
  if (v->is_array()) {
    for (size_t i = 0; i < v->size(); ++i) add((*v)[i], json_fields::path(w, i));
  } else {
    add(*v, w);
  }
}

}  // namespace

std::vector<int32_t> eos_token_ids(const nlohmann::json& config, const nlohmann::json* generation_config) {
  std::vector<int32_t> ids;
  if (generation_config) collect(*generation_config, "generation_config.json", ids);
  collect(config, "config.json", ids);
  return ids;
}

}  // namespace tandem::tokenizer
