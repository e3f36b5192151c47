// Private to the tokenizer library: the parsed parts of a Tokenizer, shared by tokenizer.cpp (encode/decode),
// tokenizer_json.cpp (tokenizer.json) and tokenizer_config.cpp (model folder).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe_model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace tandem::tokenizer {

enum class TokenKind : uint8_t { kNone, kNormal, kSpecial };

struct TokenizerComponents {
  TokenizerComponents(Normalizer n, PreTokenizer p, BpeModel m)
      : normalizer(std::move(n)), pre_tokenizer(std::move(p)), model(std::move(m)) {}

  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  BpeModel model;
  AddedVocabulary added;
  std::unordered_map<std::string, int32_t> added_ids;  // added token content -> id
  // TemplateProcessing "single": ids around the sequence when add_special_tokens.
  std::vector<int32_t> prefix_ids, suffix_ids;

  // Indexed by id, over [0, vocab_size): what decode needs per token.
  std::vector<std::string> strings;  // added token content, else vocabulary string
  std::vector<std::string> bytes;    // the ByteLevel decoder's bytes for the token
  std::vector<TokenKind> kinds;

  /// Fills strings/bytes/kinds from the model vocabulary and `added` (call after both are final).
  void index_tokens();
  /// Replaces the added tokens (ids checked against the vocabulary as HF assigns them).
  void set_added_tokens(std::vector<AddedToken> tokens, std::string_view where);
};

}  // namespace tandem::tokenizer
