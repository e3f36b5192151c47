#include "kv/kv_cache.h"

#include <cmath>

namespace tandem::kv {

namespace {

std::vector<float> checked_scales(const std::vector<float>& s, const KvCacheShape& shape, const char* which) {
  const size_t n = static_cast<size_t>(shape.n_layers) * shape.n_kv_heads;
  if (s.empty()) return std::vector<float>(n, 1.0f);
  TANDEM_CHECK(s.size() == n, "KV {} scales: {} values for {} layers x {} kv heads", which, s.size(),
               shape.n_layers, shape.n_kv_heads);
  for (size_t i = 0; i < n; ++i)
    TANDEM_CHECK(std::isfinite(s[i]) && s[i] > 0.0f, "KV {} scale of layer {} kv head {} is {}", which,
                 i / shape.n_kv_heads, i % shape.n_kv_heads, s[i]);
  return s;
}

}  // namespace

KvCache::KvCache(ops::Backend& backend, const KvCacheShape& shape) : shape_(shape) {
  TANDEM_CHECK(shape.n_layers > 0 && shape.n_blocks > 0 && shape.block_size > 0 && shape.n_kv_heads > 0 &&
                   shape.head_dim > 0,
               "invalid KV cache shape: {} layers, {} blocks of {}, {} kv heads x {}", shape.n_layers,
               shape.n_blocks, shape.block_size, shape.n_kv_heads, shape.head_dim);
  TANDEM_CHECK(shape.dtype == DType::kF32 || shape.dtype == DType::kBF16 || shape.dtype == DType::kF8E4M3,
               "KV cache dtype {} is not one of F32, BF16, F8_E4M3", dtype_name(shape.dtype));
  TANDEM_CHECK(shape.dtype == DType::kF8E4M3 || shape.fp8_scales.empty(),
               "KV scales given for a {} cache (they apply to F8_E4M3 only)", dtype_name(shape.dtype));
  if (shape.dtype == DType::kF8E4M3) {
    scales_.k = checked_scales(shape.fp8_scales.k, shape, "k");
    scales_.v = checked_scales(shape.fp8_scales.v, shape, "v");
    k_scale_ = backend.alloc(DType::kF32, {shape.n_layers, shape.n_kv_heads});
    v_scale_ = backend.alloc(DType::kF32, {shape.n_layers, shape.n_kv_heads});
    backend.upload(scales_.k.data(), k_scale_.view());
    backend.upload(scales_.v.data(), v_scale_.view());
  }
  shape_.fp8_scales = {};  // the cache's copy is scales_
  const Shape s{shape.n_blocks, shape.block_size, shape.n_kv_heads, shape.head_dim};
  // Zeroed, so the whole pool is resident from the start: the prefix cache cycles through every block, and first
  // touches during decode would cost page faults there (on the CPU) and look like growth in the process's RSS.
  for (int l = 0; l < shape.n_layers; ++l) {
    k_.push_back(backend.alloc(shape.dtype, s));
    v_.push_back(backend.alloc(shape.dtype, s));
    backend.fill_zero(k_.back().view());
    backend.fill_zero(v_.back().view());
  }
}

ops::KvLayerView KvCache::layer(int l) const {
  TANDEM_CHECK(l >= 0 && l < shape_.n_layers, "KV layer {} out of range [0, {})", l, shape_.n_layers);
  const bool fp8 = shape_.dtype == DType::kF8E4M3;
  const int64_t h0 = int64_t{l} * shape_.n_kv_heads;
  return ops::KvLayerView{.k = k_[l].view().data,
                          .v = v_[l].view().data,
                          .n_blocks = shape_.n_blocks,
                          .block_size = shape_.block_size,
                          .n_kv_heads = shape_.n_kv_heads,
                          .head_dim = shape_.head_dim,
                          .dtype = shape_.dtype,
                          .k_scale = fp8 ? k_scale_.ptr<const float>() + h0 : nullptr,
                          .v_scale = fp8 ? v_scale_.ptr<const float>() + h0 : nullptr};
}

size_t KvCache::nbytes() const {
  return static_cast<size_t>(shape_.n_layers) * shape_.n_blocks * shape_.block_size *
             shape_.bytes_per_token_layer() +
         k_scale_.view().nbytes() + v_scale_.view().nbytes();
}

}  // namespace tandem::kv
