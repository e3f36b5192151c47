// embedding, silu_mul, add: memory-bound loops split across the pool.
#include <algorithm>

#include "ops/cpu/cpu_ops.h"

namespace tandem::ops::cpu {

int64_t grain_for(int64_t item_cost) {
  constexpr int64_t kMinWork = int64_t{1} << 16;
  return std::max<int64_t>(1, kMinWork / std::max<int64_t>(item_cost, 1));
}

void embedding(const CpuContext& ctx, std::span<const int32_t> ids, const Tensor& table, const Tensor& out) {
  TANDEM_CHECK(table.rank() == 2 &&
                   (table.dtype == DType::kBF16 || table.dtype == DType::kF16 || table.dtype == DType::kF32),
               "embedding: table must be a BF16, F16 or F32 [V, H] tensor, got {} {}",
               dtype_name(table.dtype), table.shape.str());
  const int64_t V = table.dim(0), H = table.dim(1), n = static_cast<int64_t>(ids.size());
  TANDEM_CHECK(out.dtype == DType::kF32 && out.numel() == n * H && out.dim(out.rank() - 1) == H,
               "embedding: out must be f32 [{}, {}], got {} {}", n, H, dtype_name(out.dtype),
               out.shape.str());
  for (int64_t i = 0; i < n; ++i)
    TANDEM_CHECK(ids[i] >= 0 && ids[i] < V,
                 "embedding: token id {} (position {}) is outside the vocabulary [0, {})", ids[i], i, V);
  ctx.pool->parallel_for(n, grain_for(H), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      Tensor row = table.rows(ids[i], 1);
      to_f32(row, out.ptr<float>() + i * H);
    }
  });
}

void silu_mul(const CpuContext& ctx, const Tensor& gate, const Tensor& up, const Tensor& out) {
  TANDEM_CHECK(gate.dtype == DType::kF32 && up.dtype == DType::kF32 && out.dtype == DType::kF32 &&
                   gate.shape == up.shape && gate.numel() == out.numel(),
               "silu_mul: gate {}, up {}, out {} must be f32 of one shape", gate.shape.str(), up.shape.str(),
               out.shape.str());
  constexpr int64_t kBlock = 4096;
  const int64_t n = gate.numel(), blocks = (n + kBlock - 1) / kBlock;
  ctx.pool->parallel_for(blocks, grain_for(kBlock), [&](int64_t b, int64_t e) {
    const int64_t i0 = b * kBlock, i1 = std::min(n, e * kBlock);
    ctx.kernels->silu_mul(gate.ptr<const float>() + i0, up.ptr<const float>() + i0, out.ptr<float>() + i0,
                          i1 - i0);
  });
}

void add(const CpuContext& ctx, const Tensor& a, const Tensor& b, const Tensor& out) {
  TANDEM_CHECK(a.dtype == DType::kF32 && b.dtype == DType::kF32 && out.dtype == DType::kF32 &&
                   a.numel() == b.numel() && a.numel() == out.numel(),
               "add: a {}, b {}, out {} must be f32 with equal element counts", a.shape.str(), b.shape.str(),
               out.shape.str());
  constexpr int64_t kBlock = 4096;
  const int64_t n = a.numel(), blocks = (n + kBlock - 1) / kBlock;
  const float* pa = a.ptr<const float>();
  const float* pb = b.ptr<const float>();
  float* po = out.ptr<float>();
  ctx.pool->parallel_for(blocks, grain_for(kBlock), [&](int64_t bb, int64_t be) {
    const int64_t i1 = std::min(n, be * kBlock);
    for (int64_t i = bb * kBlock; i < i1; ++i) po[i] = pa[i] + pb[i];
  });
}

}  // namespace tandem::ops::cpu
