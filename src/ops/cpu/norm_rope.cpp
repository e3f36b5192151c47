// rms_norm and NeoX rotary embedding.
#include <cmath>
#include <vector>

#include "ops/cpu/cpu_ops.h"

namespace tandem::ops::cpu {

void rms_norm(const CpuContext& ctx, const Tensor& x, const Tensor& weight, float eps, bool unit_offset,
              const Tensor& out) {
  const int64_t D = weight.numel();
  TANDEM_CHECK(D > 0 && x.dtype == DType::kF32 && x.rank() >= 1 && x.dim(x.rank() - 1) == D,
               "rms_norm: x must be f32 [R, {}] to match weight {}, got {} {}", D, weight.shape.str(),
               dtype_name(x.dtype), x.shape.str());
  TANDEM_CHECK(out.dtype == DType::kF32 && out.numel() == x.numel(), "rms_norm: out {} does not match x {}",
               out.shape.str(), x.shape.str());
  std::vector<float> w(static_cast<size_t>(D));  // [D] f32, with the unit offset folded in
  to_f32(weight, w.data());
  if (unit_offset)
    for (float& v : w) v += 1.0f;
  const int64_t rows = x.numel() / D;
  ctx.pool->parallel_for(rows, grain_for(D), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x.ptr<const float>() + r * D;
      float* yr = out.ptr<float>() + r * D;
      const float mean_sq = ctx.kernels->sum_squares(xr, D) / static_cast<float>(D);
      const float inv = 1.0f / std::sqrt(mean_sq + eps);
      for (int64_t i = 0; i < D; ++i) yr[i] = (xr[i] * inv) * w[i];
    }
  });
}

void rope_neox(const CpuContext& ctx, const Tensor& x, std::span<const int32_t> positions, int rot_dim,
               float theta) {
  TANDEM_CHECK(x.dtype == DType::kF32 && x.rank() == 3, "rope_neox: x must be f32 [T, heads, D], got {} {}",
               dtype_name(x.dtype), x.shape.str());
  const int64_t T = x.dim(0), heads = x.dim(1), D = x.dim(2);
  TANDEM_CHECK(static_cast<int64_t>(positions.size()) == T, "rope_neox: {} positions for x {}",
               positions.size(), x.shape.str());
  TANDEM_CHECK(rot_dim > 0 && rot_dim % 2 == 0 && rot_dim <= D,
               "rope_neox: rot_dim {} must be even and in (0, head_dim {}]", rot_dim, D);
  const int half = rot_dim / 2;
  // Exactly HF's fp32 recipe: inv_freq = 1 / base ** (arange(0, dim, 2).float() / dim).
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int j = 0; j < half; ++j)
    inv_freq[j] = 1.0f / std::pow(theta, static_cast<float>(2 * j) / static_cast<float>(rot_dim));
  ctx.pool->parallel_for(T, grain_for(heads * rot_dim * 4), [&](int64_t b, int64_t e) {
    std::vector<float> cs(static_cast<size_t>(half)), sn(static_cast<size_t>(half));
    for (int64_t t = b; t < e; ++t) {
      const float pos = static_cast<float>(positions[t]);
      for (int j = 0; j < half; ++j) {
        const float angle = pos * inv_freq[j];
        cs[j] = std::cos(angle);
        sn[j] = std::sin(angle);
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x.ptr<float>() + (t * heads + h) * D;
        for (int j = 0; j < half; ++j) {
          const float a = v[j], c = v[j + half];
          v[j] = a * cs[j] - c * sn[j];
          v[j + half] = c * cs[j] + a * sn[j];
        }
      }
    }
  });
}

}  // namespace tandem::ops::cpu
