// One sequence's logical-to-physical KV block mapping.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kv/block_allocator.h"

namespace tandem::kv {

class BlockTable {
 public:
  explicit BlockTable(int block_size) : block_size_(block_size) {}

  int block_size() const { return block_size_; }
  const std::vector<int32_t>& blocks() const { return blocks_; }
  int64_t capacity_tokens() const { return static_cast<int64_t>(blocks_.size()) * block_size_; }

  /// Blocks that must be allocated so the table covers n_tokens positions.
  int64_t blocks_needed(int64_t n_tokens) const;
  /// Grows the table to cover n_tokens. Returns false (allocating nothing) if the allocator is short.
  bool ensure(BlockAllocator& alloc, int64_t n_tokens);
  /// Starts an empty table with blocks shared from the prefix cache (one more reference each).
  void adopt(BlockAllocator& alloc, std::span<const int32_t> shared);
  /// Shrinks the table to the blocks that cover n_tokens positions (rollback of rejected tokens).
  void truncate(BlockAllocator& alloc, int64_t n_tokens);
  /// Drops every block, the last first: a cached tail is then evicted before the prefix it extends.
  void release(BlockAllocator& alloc) { truncate(alloc, 0); }

 private:
  int block_size_;
  std::vector<int32_t> blocks_;
};

}  // namespace tandem::kv
