// The `pre_tokenizer` section of tokenizer.json: Split steps (regex or literal pattern, any delimiter behavior,
// invert) followed by an optional ByteLevel step (add_prefix_space, use_regex with GPT-2's regex), as a single
// pre-tokenizer or a Sequence. Semantics follow HF tokenizers (normalizer.rs NormalizedString::split,
// pre_tokenizers/split.rs, pre_tokenizers/byte_level.rs); other types are a load error.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/regex.h"

namespace tandem::tokenizer {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  static PreTokenizer from_json(const nlohmann::json& spec, std::string_view where);

  /// True when the last step is ByteLevel: the pieces are then raw bytes that the model reads through the
  /// byte-level alphabet (the mapping itself is left to the model, which works on bytes directly).
  bool byte_level() const { return byte_level_.has_value(); }

  /// Splits one segment of normalized text (valid UTF-8, not an added token) into the pieces the model encodes,
  /// appended to `pieces`. Empty pieces are dropped, as HF does.
  void pre_tokenize(std::string_view segment, std::vector<std::string>& pieces) const;

 private:
  struct Split {
    Regex regex;
    SplitBehavior behavior;
    bool invert;
  };
  struct ByteLevelStep {
    bool add_prefix_space;
    std::optional<Regex> gpt2_regex;  // set when use_regex
  };

  void add(const nlohmann::json& spec, std::string_view where);
  static void split(const Regex& regex, SplitBehavior behavior, bool invert, std::string_view text,
                    std::vector<std::string>& out);

  std::vector<Split> splits_;
  std::optional<ByteLevelStep> byte_level_;
};

}  // namespace tandem::tokenizer
