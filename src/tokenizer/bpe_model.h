// The BPE model of tokenizer.json (HF tokenizers models/bpe): vocab, ranked merges, unk_token/fuse_unk,
// byte_fallback, continuing_subword_prefix, end_of_word_suffix, ignore_merges; with a per-word cache.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/merge_map.h"

namespace tandem::tokenizer {

class BpeModel {
 public:
  /// Parses `spec` (the "model" section). With `byte_level_input`, tokenize() receives raw bytes that stand for
  /// their byte-level characters (the ByteLevel pre-tokenizer's output without the re-encoding to text).
  static BpeModel from_json(const nlohmann::json& spec, std::string_view where, bool byte_level_input);

  BpeModel(BpeModel&& other) noexcept;

  /// Appends the ids of one pre-tokenized piece. Thread-safe.
  void tokenize(std::string_view piece, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  /// Vocabulary strings indexed by id; "" where no token has that id.
  const std::vector<std::string>& tokens() const { return id_to_token_; }
  /// Number of vocabulary entries (HF Model::get_vocab_size, which added-token ids are assigned after).
  size_t entry_count() const { return vocab_.size(); }

 private:
  BpeModel() = default;
  void initial_symbols(std::string_view piece, std::vector<int32_t>& symbols) const;
  void add_char(std::string_view symbol, bool& pending_unk, std::vector<int32_t>& symbols) const;
  void merge(std::vector<int32_t>& symbols) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  MergeMap merges_;
  bool byte_level_input_ = false;
  // Byte-level fast path: the id of each byte's character, -1 if the vocabulary lacks it.
  std::array<int32_t, 256> byte_ids_{};
  // With ignore_merges and byte-level input: ids of tokens keyed by the bytes they stand for.
  std::unordered_map<std::string, int32_t> vocab_by_bytes_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;

  // Word cache (HF keeps one too): a piece's ids depend only on the piece. Sharded by hash so that concurrent
  // encodes rarely wait on each other; a shard is cleared when full.
  static constexpr size_t kCacheShards = 16;
  static constexpr size_t kShardCapacity = 4096;
  static constexpr size_t kMaxCachedLength = 256;
  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>> words;
  };
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace tandem::tokenizer
