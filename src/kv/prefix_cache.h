// Automatic prefix caching: full KV blocks addressed by their contents, so a request whose prompt starts with a
// prefix another request already ran (a system prompt, tool definitions, the conversation so far) shares those
// blocks instead of recomputing them.
//
// A block's key chains its parent's key with its tokens (and a salt for what else changes its contents, and,
// where prompt rows and generated rows get different bits, which of its positions were prompt positions). Hits
// are whole blocks; the last token of a request is always recomputed, so its logits exist. A block enters the
// cache once the target's KV covers all its positions; it leaves only when the allocator needs it back (LRU
// among unused cached blocks, kv/block_allocator.h) or on flush().
//
// The draft (MTP) shares the block ids, so a hit restores the draft's KV too, but only where it was written: the
// draft's KV at position p pairs the target hidden at p with the token at p + 1, so a block is draft-valid once
// its owner's draft covered all its positions, and the token that followed it is kept (draft_next) so a hit that
// ends on that block checks it.
//
// Threading: one thread (the engine's).
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "kv/block_allocator.h"

namespace tandem::kv {

/// What a sequence has published so far (one per sequence, reset when it loses its blocks).
struct PrefixCursor {
  std::vector<uint64_t> keys;  // chain keys of its leading full blocks, in order
  int64_t draft_blocks = 0;    // leading blocks whose draft KV it has published
};

struct PrefixMatch {
  std::vector<int32_t> blocks;  // the longest cached chain of full blocks over the tokens, in order
  std::vector<uint64_t> keys;   // their keys
  int64_t draft_blocks = 0;     // leading blocks whose draft KV a request with a draft state can use
};

class PrefixCache {
 public:
  /// salt: what else decides a block's contents (KV dtype, block size). path_in_key: the backend gives prompt
  /// rows other bits than generated rows (ops::Backend::prefill_linear_differs), so a block's key records which of
  /// its positions were prompt positions and a hit has exactly the bits a recompute would.
  PrefixCache(BlockAllocator& alloc, int block_size, uint64_t salt, bool path_in_key);
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  /// Key of a block from its parent's key (the salt for the first block), its tokens and its path tag.
  static uint64_t chain_key(uint64_t parent, std::span<const int32_t> tokens, uint32_t tag);

  /// The longest cached chain over tokens[0, n - 1) (n = tokens.size(); the last token is always recomputed) of a
  /// request whose first n_prompt tokens are its prompt.
  PrefixMatch match(std::span<const int32_t> tokens, int64_t n_prompt) const;

  /// Publishes a sequence's newly complete blocks: those the target's KV covers ([0, n_target)) enter the cache;
  /// those the draft's covers ([0, n_draft)) become draft-valid (replacing a cached copy that is not). blocks is
  /// its block table, tokens its prompt + output.
  void publish(PrefixCursor& cur, std::span<const int32_t> blocks, std::span<const int32_t> tokens, int64_t n_prompt,
               int64_t n_target, int64_t n_draft);

  /// Forgets every key (/flush_cache). Blocks in use stay with their sequences; unused ones become free.
  void flush();

  int64_t num_blocks() const { return static_cast<int64_t>(table_.size()); }  // blocks holding a key
  bool draft_valid(int32_t block) const { return meta_[block].draft_next >= 0; }
  int block_size() const { return block_size_; }

 private:
  struct Meta {
    uint64_t key = 0;
    uint64_t parent = 0;
    bool keyed = false;           // table_[key] == this block
    uint32_t tag = 0;
    int32_t draft_next = -1;      // draft-valid: the token after the block when its draft KV was written; -1: not
    std::vector<int32_t> tokens;  // [block_size]: checked on every hit (a key collision cannot alias contents)
  };
  uint32_t tag(int64_t block, int64_t n_prompt) const;
  void insert(int32_t block, uint64_t key, uint64_t parent, uint32_t tag, std::span<const int32_t> tokens);
  void forget(int32_t block);

  BlockAllocator& alloc_;
  int block_size_;
  uint64_t salt_;
  bool path_in_key_;
  std::unordered_map<uint64_t, int32_t> table_;  // key -> block
  std::vector<Meta> meta_;                       // [n_blocks]
};

}  // namespace tandem::kv
