#include "kv/block_allocator.h"

#include "core/error.h"

namespace tandem::kv {

BlockAllocator::BlockAllocator(int64_t n_blocks)
    : n_total_(n_blocks),
      ref_(n_blocks > 0 ? n_blocks : 0, 0),
      cached_(n_blocks > 0 ? n_blocks : 0, 0),
      prev_(n_blocks > 0 ? n_blocks + 1 : 1),
      next_(n_blocks > 0 ? n_blocks + 1 : 1),
      in_lru_(n_blocks > 0 ? n_blocks : 0, 0) {
  TANDEM_CHECK(n_blocks > 0, "KV cache needs at least one block, got {}", n_blocks);
  TANDEM_CHECK(n_blocks < (int64_t{1} << 31), "{} KV blocks do not fit 32-bit block ids", n_blocks);
  free_.reserve(n_blocks);
  // Hand out low ids first: pop from the back of a descending list.
  for (int64_t i = n_blocks - 1; i >= 0; --i) free_.push_back(static_cast<int32_t>(i));
  const auto s = static_cast<int32_t>(n_total_);
  prev_[s] = next_[s] = s;
}

int32_t BlockAllocator::check(int32_t b) const {
  TANDEM_CHECK(b >= 0 && b < n_total_, "KV block id {} outside [0, {})", b, n_total_);
  return b;
}

void BlockAllocator::lru_push_back(int32_t b) {
  const auto s = static_cast<int32_t>(n_total_);
  prev_[b] = prev_[s];
  next_[b] = s;
  next_[prev_[s]] = b;
  prev_[s] = b;
  in_lru_[b] = 1;
  ++n_lru_;
}

void BlockAllocator::lru_remove(int32_t b) {
  next_[prev_[b]] = next_[b];
  prev_[next_[b]] = prev_[b];
  in_lru_[b] = 0;
  --n_lru_;
}

std::vector<int32_t> BlockAllocator::allocate(int64_t n) {
  TANDEM_CHECK(can_allocate(n), "allocate({}) with only {} free KV blocks", n, num_free());
  std::vector<int32_t> out(n);
  for (int64_t i = 0; i < n; ++i) {
    int32_t b;
    if (!free_.empty()) {
      b = free_.back();
      free_.pop_back();
    } else {  // evict the least recently used cached block
      b = next_[n_total_];
      lru_remove(b);
      cached_[b] = 0;
      if (on_evict_) on_evict_(b);
    }
    ref_[b] = 1;
    out[i] = b;
  }
  return out;
}

void BlockAllocator::free(std::span<const int32_t> blocks) {
  for (int32_t b : blocks) {
    TANDEM_CHECK(check(b) >= 0 && ref_[b] > 0, "freeing KV block {} that is not in use", b);
    if (--ref_[b] > 0) continue;
    if (cached_[b]) lru_push_back(b);
    else free_.push_back(b);
  }
}

void BlockAllocator::share(int32_t b) {
  TANDEM_CHECK(ref_[check(b)] > 0 || in_lru_[b], "sharing KV block {} that is neither in use nor cached", b);
  if (in_lru_[b]) lru_remove(b);
  ++ref_[b];
}

void BlockAllocator::set_cached(int32_t b, bool cached) {
  TANDEM_CHECK(!cached || ref_[check(b)] > 0 || in_lru_[b], "caching KV block {} that is not in use", b);
  cached_[b] = cached ? 1 : 0;
  if (!cached && in_lru_[b]) {
    lru_remove(b);
    free_.push_back(b);
  }
}

}  // namespace tandem::kv
