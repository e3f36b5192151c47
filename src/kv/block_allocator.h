// Free list of fixed-size KV blocks. One allocator serves the target's and the draft's caches: a block id
// indexes both (SGLang shares one slot space between them the same way), so a sequence has one block table.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tandem::kv {

class BlockAllocator {
 public:
  explicit BlockAllocator(int64_t n_blocks);

  int64_t num_total() const { return n_total_; }
  int64_t num_free() const { return static_cast<int64_t>(free_.size()); }
  int64_t num_used() const { return n_total_ - num_free(); }

  bool can_allocate(int64_t n) const { return n <= num_free(); }
  /// Pops n blocks. Precondition: can_allocate(n) (checked).
  std::vector<int32_t> allocate(int64_t n);
  /// Returns blocks to the free list. Freeing a block twice is a broken invariant (checked).
  void free(std::span<const int32_t> blocks);

 private:
  int64_t n_total_;
  std::vector<int32_t> free_;
  std::vector<uint8_t> in_use_;
};

}  // namespace tandem::kv
