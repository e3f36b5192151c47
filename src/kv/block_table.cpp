#include "kv/block_table.h"

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

void BlockTable::truncate(BlockAllocator& alloc, int64_t n_tokens) {
  const size_t keep = static_cast<size_t>((n_tokens + block_size_ - 1) / block_size_);
  if (keep >= blocks_.size()) return;
  alloc.free(std::span<const int32_t>(blocks_.data() + keep, blocks_.size() - keep));
  blocks_.resize(keep);
}

}  // namespace tandem::kv
