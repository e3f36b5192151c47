// Added tokens (tokenizer.json "added_tokens"): special and non-special tokens matched in the text before
// pre-tokenization, like HF tokenizers' AddedVocabulary: tokens with normalized=false are found in the raw text,
// those with normalized=true in the normalized text; leftmost-longest non-overlapping matches (its Aho-Corasick
// MatchKind::LeftmostLongest), then the single_word / lstrip / rstrip rules.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/regex.h"

namespace tandem::tokenizer {

class Normalizer;

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
  bool special = false;
};

/// A piece of text: either an added token (id >= 0) or text to pre-tokenize (id == -1), as [begin, end).
struct Segment {
  size_t begin, end;
  int32_t id;
};

class AddedVocabulary {
 public:
  AddedVocabulary();
  /// `tokens` in file order; normalized tokens are matched by their normalized content.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer& normalizer);
  ~AddedVocabulary();
  AddedVocabulary(AddedVocabulary&&) noexcept;
  AddedVocabulary& operator=(AddedVocabulary&&) noexcept;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  bool has_normalized_tokens() const { return normalized_.nodes.size() > 1; }

  /// Splits `text` on the raw (normalized == false) or the normalized tokens, appending segments that cover it.
  void split(std::string_view text, bool normalized_set, std::vector<Segment>& out) const;

 private:
  // Byte trie over token contents, walked from each start position to find the longest token there.
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
      int32_t token = -1;                             // index into tokens_ of a token ending here
    };
    std::vector<Node> nodes{Node{}};
    std::array<bool, 256> first_byte{};
    void insert(std::string_view key, int32_t token);
    // Length and token of the longest key starting at text[pos], or {0, -1}.
    std::pair<size_t, int32_t> longest(std::string_view text, size_t pos) const;
  };

  std::vector<AddedToken> tokens_;
  Trie raw_;
  Trie normalized_;
  Regex word_end_;    // \w$ with Rust regex's Unicode \w (single_word)
  Regex word_start_;  // ^\w
};

}  // namespace tandem::tokenizer
