#include "kv/block_allocator.h"

#include "core/error.h"

namespace tandem::kv {

BlockAllocator::BlockAllocator(int64_t n_blocks) : n_total_(n_blocks), in_use_(n_blocks, 0) {
  TANDEM_CHECK(n_blocks > 0, "KV cache needs at least one block, got {}", n_blocks);
  free_.reserve(n_blocks);
  // Hand out low ids first: pop from the back of a descending list.
  for (int64_t i = n_blocks - 1; i >= 0; --i) free_.push_back(static_cast<int32_t>(i));
}

std::vector<int32_t> BlockAllocator::allocate(int64_t n) {
  TANDEM_CHECK(can_allocate(n), "allocate({}) with only {} free KV blocks", n, num_free());
  std::vector<int32_t> out(n);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = free_.back();
    free_.pop_back();
    in_use_[out[i]] = 1;
  }
  return out;
}

void BlockAllocator::free(std::span<const int32_t> blocks) {
  for (int32_t b : blocks) {
    TANDEM_CHECK(b >= 0 && b < n_total_ && in_use_[b], "freeing KV block {} that is not in use", b);
    in_use_[b] = 0;
    free_.push_back(b);
  }
}

}  // namespace tandem::kv
