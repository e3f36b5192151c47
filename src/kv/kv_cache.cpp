#include "kv/kv_cache.h"

namespace tandem::kv {

KvCache::KvCache(ops::Backend& backend, const KvCacheShape& shape) : shape_(shape) {
  TANDEM_CHECK(shape.n_layers > 0 && shape.n_blocks > 0 && shape.block_size > 0 && shape.n_kv_heads > 0 &&
                   shape.head_dim > 0,
               "invalid KV cache shape: {} layers, {} blocks of {}, {} kv heads x {}", shape.n_layers,
               shape.n_blocks, shape.block_size, shape.n_kv_heads, shape.head_dim);
  const Shape s{shape.n_blocks, shape.block_size, shape.n_kv_heads, shape.head_dim};
  for (int l = 0; l < shape.n_layers; ++l) {
    k_.push_back(backend.alloc(DType::kF32, s));
    v_.push_back(backend.alloc(DType::kF32, s));
  }
}

ops::KvLayerView KvCache::layer(int l) const {
  TANDEM_CHECK(l >= 0 && l < shape_.n_layers, "KV layer {} out of range [0, {})", l, shape_.n_layers);
  return ops::KvLayerView{k_[l].ptr<float>(), v_[l].ptr<float>(), shape_.n_blocks, shape_.block_size,
                          shape_.n_kv_heads, shape_.head_dim};
}

size_t KvCache::nbytes() const {
  return static_cast<size_t>(shape_.n_layers) * shape_.n_blocks * shape_.block_size *
         shape_.bytes_per_token_layer();
}

}  // namespace tandem::kv
