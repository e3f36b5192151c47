// Fixed-size KV blocks with reference counts. One allocator serves the target's and the draft's caches: a block id
// indexes both (SGLang shares one slot space between them the same way), so a sequence has one block table.
//
// A block is in one of three states: in use (reference count > 0: one per block table holding it), cached (count
// 0, but the prefix cache still maps a key to its contents: it sits on an LRU list and is reused only when no
// free block is left), or free. Cached blocks count as free for allocation: taking one evicts it, and the
// on_evict callback tells the prefix cache to forget its key.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace tandem::kv {

class BlockAllocator {
 public:
  explicit BlockAllocator(int64_t n_blocks);

  int64_t num_total() const { return n_total_; }
  /// Blocks allocate() can hand out: free ones plus cached ones (evicted on demand).
  int64_t num_free() const { return static_cast<int64_t>(free_.size()) + n_lru_; }
  int64_t num_used() const { return n_total_ - num_free(); }
  int64_t num_cached() const { return n_lru_; }  // unused blocks the prefix cache still holds

  bool can_allocate(int64_t n) const { return n <= num_free(); }
  /// Takes n blocks (reference count 1 each): free ones first, then the least recently used cached ones, whose
  /// eviction on_evict reports. Precondition: can_allocate(n) (checked).
  std::vector<int32_t> allocate(int64_t n);
  /// Drops one reference to each block, in order. A block whose count reaches 0 goes to the LRU list's
  /// most-recent end if it is cached, else to the free list. Freeing an unused block is a broken invariant (checked).
  void free(std::span<const int32_t> blocks);
  /// Adds a reference to a block that is in use or cached (a prefix cache hit); a cached one leaves the LRU list.
  void share(int32_t block);
  int32_t ref_count(int32_t block) const { return ref_[check(block)]; }

  /// Whether the prefix cache holds a key for this block. Clearing it on an unused cached block frees it.
  void set_cached(int32_t block, bool cached);
  bool cached(int32_t block) const { return cached_[check(block)] != 0; }
  /// Called with each cached block that allocate() takes back, before it is handed out.
  void set_on_evict(std::function<void(int32_t)> on_evict) { on_evict_ = std::move(on_evict); }

 private:
  int32_t check(int32_t block) const;
  void lru_push_back(int32_t b);
  void lru_remove(int32_t b);

  int64_t n_total_;
  std::vector<int32_t> free_;
  std::vector<int32_t> ref_;      // [n_total]
  std::vector<uint8_t> cached_;   // [n_total]
  // LRU list of unused cached blocks, intrusive: index n_total is the sentinel (next = oldest, prev = newest).
  std::vector<int32_t> prev_, next_;  // [n_total + 1]
  std::vector<uint8_t> in_lru_;       // [n_total]
  int64_t n_lru_ = 0;
  std::function<void(int32_t)> on_evict_;
};

}  // namespace tandem::kv
