// Paged K/V storage for a stack of attention layers, addressed by block ids from a BlockAllocator.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/ops.h"

namespace tandem::kv {

struct KvCacheShape {
  int n_layers = 0;
  int64_t n_blocks = 0;
  int block_size = 16;
  int n_kv_heads = 0;
  int head_dim = 0;

  /// Bytes of K + V for one token in one layer.
  size_t bytes_per_token_layer() const { return 2ull * n_kv_heads * head_dim * sizeof(float); }
};

class KvCache {
 public:
  KvCache(ops::Backend& backend, const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }
  /// Layer l's views: k, v each [n_blocks, block_size, n_kv_heads, head_dim] f32.
  ops::KvLayerView layer(int l) const;
  size_t nbytes() const;

 private:
  KvCacheShape shape_;
  std::vector<Buffer> k_;  // per layer [n_blocks, block_size, n_kv_heads, head_dim] f32
  std::vector<Buffer> v_;  // per layer, same
};

}  // namespace tandem::kv
