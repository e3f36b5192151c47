#include "tokenizer/normalizer.h"

#include "tokenizer/json_fields.h"
#include "tokenizer/nfc.h"

namespace tandem::tokenizer {

Normalizer Normalizer::from_json(const nlohmann::json& spec, std::string_view where) {
  Normalizer n;
  if (!spec.is_null()) n.add(spec, where);
  return n;
}

void Normalizer::add(const nlohmann::json& spec, std::string_view where) {
  const std::string type = json_fields::get_string(spec, "type", where);
  if (type == "NFC") {
    nfc_ = true;
  } else if (type == "Sequence") {
    const nlohmann::json& list = json_fields::require(spec, "normalizers", where);
    const std::string list_where = json_fields::path(where, "normalizers");
    if (!list.is_array()) fail("{}: expected an array", list_where);
    for (size_t i = 0; i < list.size(); ++i) add(list[i], json_fields::path(list_where, i));
  } else {
    fail("{}: normalizer type '{}' is not supported (supported: NFC, Sequence)", where, type);
  }
}

std::string Normalizer::normalize(std::string_view text) const {
  return nfc_ ? nfc(text) : std::string(text);
}

}  // namespace tandem::tokenizer
