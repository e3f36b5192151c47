#include "kv/block_table.h"

#include "core/error.h"

namespace tandem::kv {

int64_t BlockTable::blocks_needed(int64_t n_tokens) const {
  const int64_t want = (n_tokens + block_size_ - 1) / block_size_;
  return want > static_cast<int64_t>(blocks_.size()) ? want - static_cast<int64_t>(blocks_.size()) : 0;
}

bool BlockTable::ensure(BlockAllocator& alloc, int64_t n_tokens) {
  const int64_t need = blocks_needed(n_tokens);
  if (need == 0) return true;
  if (!alloc.can_allocate(need)) return false;
  for (int32_t b : alloc.allocate(need)) blocks_.push_back(b);
  return true;
}

void BlockTable::adopt(BlockAllocator& alloc, std::span<const int32_t> shared) {
  TANDEM_CHECK(blocks_.empty(), "adopting cached blocks into a table that already has {}", blocks_.size());
  for (int32_t b : shared) {
    alloc.share(b);
    blocks_.push_back(b);
  }
}

void BlockTable::truncate(BlockAllocator& alloc, int64_t n_tokens) {
  const size_t keep = static_cast<size_t>((n_tokens + block_size_ - 1) / block_size_);
  if (keep >= blocks_.size()) return;
  // Last first: freed cached blocks enter the LRU list in this order, so a sequence's tail is evicted first.
  const std::vector<int32_t> tail(blocks_.rbegin(), blocks_.rend() - static_cast<std::ptrdiff_t>(keep));
  alloc.free(tail);
  blocks_.resize(keep);
}

}  // namespace tandem::kv
