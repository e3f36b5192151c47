// Hugging Face tokenizer.json (byte-level BPE) loaded natively: encode/decode with the exact ids and text of HF
// `tokenizers`, plus what tokenizer_config.json adds (chat template, bos/eos, extra added tokens, decode cleanup).
//
// Encoding pipeline (HF TokenizerImpl::encode_single_sequence): added tokens with normalized=false are cut out of
// the raw text; the rest is normalized (NFC or nothing); added tokens with normalized=true are cut out of that;
// every remaining segment is pre-tokenized (Split regexes, then ByteLevel) and each piece is BPE-encoded.
// Unsupported components in tokenizer.json are load errors naming the component and its place in the file.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::tokenizer {

struct TokenizerComponents;

class Tokenizer {
 public:
  /// Loads a tokenizer.json file. Throws tandem::Error (file, field path, reason) on failure.
  static std::unique_ptr<Tokenizer> from_file(const std::filesystem::path& tokenizer_json);
  /// Builds from parsed tokenizer.json content; `source` names it in errors.
  static std::unique_ptr<Tokenizer> from_json(const nlohmann::json& tokenizer_json, std::string_view source);
  /// Loads tokenizer.json plus tokenizer_config.json (chat_template string or the separate
  /// chat_template.jinja file, bos/eos token strings, added_tokens_decoder entries missing from
  /// tokenizer.json, clean_up_tokenization_spaces) from a model folder. tokenizer_config.json is optional.
  /// When the folder has a config.json with an integer vocab_size, check_model_vocabulary is applied to it.
  static std::unique_ptr<Tokenizer> from_dir(const std::filesystem::path& dir);

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  /// Token ids of `text` (UTF-8; throws tandem::Error if it is not valid UTF-8). With add_special_tokens the
  /// post_processor's template tokens are added (TemplateProcessing; Qwen3/GLM/DeepSeek-V3 files add none).
  /// Thread-safe.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;

  /// HF decode: the tokens' bytes concatenated and read as UTF-8 with U+FFFD for invalid sequences; special tokens
  /// appear as their content unless skip_special_tokens; ids that name no token are skipped (as HF does).
  /// Spaces are cleaned up (" ." -> "." etc., transformers' clean_up_tokenization) only when tokenizer_config.json
  /// sets clean_up_tokenization_spaces.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  /// The vocabulary string of `id` (e.g. "Ġthe", or an added token's content, normalized if the token is matched
  /// after normalization, as HF returns it); "" if no token has this id.
  std::string id_to_token(int32_t id) const;
  /// True for added tokens marked special (skipped by decode with skip_special_tokens).
  bool is_special(int32_t id) const;
  /// Whether any token has this id.
  bool has_token(int32_t id) const;
  /// Max id + 1 over the vocabulary and the added tokens.
  int32_t vocab_size() const;

  const std::string& chat_template() const { return chat_template_; }
  std::optional<std::string> bos_token() const { return bos_token_; }
  std::optional<std::string> eos_token() const { return eos_token_; }
  bool clean_up_tokenization_spaces() const { return clean_up_tokenization_spaces_; }

  /// Raw bytes of one token as the decoder produces them (byte-level characters mapped back to bytes; added tokens
  /// outside the byte-level alphabet as their UTF-8 content); "" if no token has this id.
  std::string token_bytes(int32_t id) const;

 private:
  using Components = TokenizerComponents;
  explicit Tokenizer(std::unique_ptr<Components> c);

  std::unique_ptr<Components> c_;
  std::string chat_template_;
  std::optional<std::string> bos_token_;
  std::optional<std::string> eos_token_;
  bool clean_up_tokenization_spaces_ = false;
};

/// Throws tandem::Error naming `where` (e.g. "config.json") and vocab_size when a model whose embedding has
/// `vocab_size` rows is smaller than `tok`'s vocabulary (tok.vocab_size(), the largest id + 1): the tokenizer
/// would produce ids the model cannot embed. A larger model vocabulary (padding rows) is normal.
void check_model_vocabulary(const Tokenizer& tok, int64_t vocab_size, std::string_view where);

/// transformers' clean_up_tokenization: removes the space before . ? ! , and English contractions, in its order.
std::string clean_up_tokenization(std::string_view text);

}  // namespace tandem::tokenizer
