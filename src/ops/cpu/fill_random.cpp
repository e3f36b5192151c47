// Backend::fill_random on the CPU: the values of ops/fill_random.h (shared with the CUDA kernel), the
// elements split over the pool's threads. Each element depends on (seed, index) only, so the split does not
// change the bits.
#include "ops/fill_random.h"

#include <cmath>

#include "ops/cpu/cpu_ops.h"

namespace tandem::ops::cpu {

namespace {

/// p[i] = convert(uniform(seed, i, lo, hi)) for i in [begin, end).
template <typename T, typename Convert>
void fill_range(T* p, int64_t begin, int64_t end, uint64_t seed, float lo, float hi, Convert convert) {
  for (int64_t i = begin; i < end; ++i)
    p[i] = convert(fill_random::uniform(seed, static_cast<uint64_t>(i), lo, hi));
}

}  // namespace

void fill_random(const CpuContext& ctx, const Tensor& t, uint64_t seed, float lo, float hi) {
  TANDEM_CHECK(t.dtype == DType::kF32 || t.dtype == DType::kBF16 || t.dtype == DType::kF16 ||
                   t.dtype == DType::kF8E4M3,
               "fill_random: {} {} is not a float type (F32, BF16, F16, F8_E4M3)", dtype_name(t.dtype),
               t.shape.str());
  TANDEM_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, "fill_random: range [{}, {}) of {} {}", lo,
               hi, dtype_name(t.dtype), t.shape.str());
  const int64_t n = t.numel();
  if (t.empty() || n == 0) return;
  void* data = t.data;
  const DType dtype = t.dtype;
  // 1-5 ns per element on one core (f32 fastest, e4m3 subnormals slowest): chunks of 64K elements keep the
  // threads' start-up cost negligible. For a large tensor the first touch of its pages costs more than the
  // fill.
  ctx.pool->parallel_for(n, int64_t{1} << 16, [=](int64_t begin, int64_t end) {
    switch (dtype) {
      case DType::kF32:
        fill_range(static_cast<float*>(data), begin, end, seed, lo, hi, [](float v) { return v; });
        break;
      case DType::kBF16:
        fill_range(static_cast<uint16_t*>(data), begin, end, seed, lo, hi,
                   [](float v) { return fill_random::to_bf16(v); });
        break;
      case DType::kF16:
        fill_range(static_cast<uint16_t*>(data), begin, end, seed, lo, hi,
                   [](float v) { return fill_random::to_f16(v); });
        break;
      default:  // kF8E4M3 (checked above)
        fill_range(static_cast<uint8_t*>(data), begin, end, seed, lo, hi,
                   [](float v) { return fill_random::to_f8e4m3(v); });
        break;
    }
  });
}

}  // namespace tandem::ops::cpu
