// Paged K/V storage for a stack of attention layers, addressed by block ids from a BlockAllocator.
#pragma once

#include <cstdint>
#include <vector>

#include "ops/ops.h"

namespace tandem::kv {

/// Dequantisation scales of an f8_e4m3 cache, one per (layer, kv head): the value attention reads is
/// stored * scale. They are fixed when the cache is made (from the checkpoint, or 1.0), never measured from
/// traffic, so what a request computes does not depend on which requests came first.
struct KvScales {
  std::vector<float> k;  // [n_layers * n_kv_heads] f32, or empty: all 1.0
  std::vector<float> v;  // [n_layers * n_kv_heads] f32, or empty: all 1.0

  bool empty() const { return k.empty() && v.empty(); }
};

/// What a KvCache allocates.
struct KvCacheShape {
  int n_layers = 0;
  int64_t n_blocks = 0;
  int block_size = 16;
  int n_kv_heads = 0;
  int head_dim = 0;
  DType dtype = DType::kF32;  // element type of K and V: kF32 (exact), kBF16 or kF8E4M3
  KvScales fp8_scales;        // kF8E4M3 only; empty: 1.0 (vLLM's default without checkpoint scales)

  /// Bytes of K + V for one token in one layer.
  size_t bytes_per_token_layer() const { return 2ull * n_kv_heads * head_dim * dtype_size(dtype); }
};

class KvCache {
 public:
  /// Allocates every layer's K and V (uninitialised: kv_store writes a position before attention reads it).
  /// Checks the shape, the dtype (f32, bf16, f8_e4m3) and, for fp8, the scales (count, finite, > 0).
  KvCache(ops::Backend& backend, const KvCacheShape& shape);

  const KvCacheShape& shape() const { return shape_; }
  /// Layer l's views: k, v each [n_blocks, block_size, n_kv_heads, head_dim] of shape().dtype; for fp8 the
  /// layer's k_scale / v_scale [n_kv_heads] (device memory).
  ops::KvLayerView layer(int l) const;
  /// K/V bytes of all layers, plus the fp8 scales.
  size_t nbytes() const;
  /// The fp8 scales in use, [n_layers * n_kv_heads] each (all 1.0 unless given); empty for f32 / bf16.
  const KvScales& scales() const { return scales_; }

 private:
  KvCacheShape shape_;
  std::vector<Buffer> k_;  // per layer [n_blocks, block_size, n_kv_heads, head_dim] dtype
  std::vector<Buffer> v_;  // per layer, same
  KvScales scales_;        // host copy of the fp8 scales
  Buffer k_scale_;         // [n_layers, n_kv_heads] f32 on the device; fp8 only
  Buffer v_scale_;         // [n_layers, n_kv_heads] f32 on the device; fp8 only
};

}  // namespace tandem::kv
