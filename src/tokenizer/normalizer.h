// The `normalizer` section of tokenizer.json. Supported: null, NFC, and Sequence of supported normalizers; any
// other type is a load error (a silently skipped normalizer would change token ids).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace tandem::tokenizer {

class Normalizer {
 public:
  /// `spec` is the JSON value of the section (null allowed); `where` names it in errors.
  static Normalizer from_json(const nlohmann::json& spec, std::string_view where);

  /// True when normalize() returns its input unchanged for every input.
  bool is_identity() const { return !nfc_; }

  /// The normalized form of `text` (valid UTF-8).
  std::string normalize(std::string_view text) const;

 private:
  void add(const nlohmann::json& spec, std::string_view where);

  bool nfc_ = false;  // NFC is idempotent, so any number of NFC steps is one
};

}  // namespace tandem::tokenizer
