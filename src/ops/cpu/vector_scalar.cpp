// Portable vector kernels (the reference the SIMD tables are tested against, and the fallback).
#include <array>
#include <cmath>

#include "ops/cpu/dispatch.h"

namespace tandem::ops::cpu {
namespace {

const std::array<float, 256>& f8_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = f8e4m3_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

/// Element i of a KV row of type KT, as its exact f32 value.
template <DType KT>
float kv_at(const void* row, int64_t i) {
  if constexpr (KT == DType::kF32) {
    return static_cast<const float*>(row)[i];
  } else if constexpr (KT == DType::kBF16) {
    return bf16_to_f32(static_cast<const uint16_t*>(row)[i]);
  } else {
    return f8_table()[static_cast<const uint8_t*>(row)[i]];
  }
}

template <DType KT>
void qk_rows(const float* q, int64_t q_stride, int n_heads, const void* k, int64_t k_stride, int n_rows,
             int64_t d, float scale, float* scores, int64_t s_stride) {
  for (int h = 0; h < n_heads; ++h)
    for (int r = 0; r < n_rows; ++r) {
      const float* qh = q + h * q_stride;
      const int64_t kr = r * k_stride;
      float s = 0.0f;
      for (int64_t i = 0; i < d; ++i) s += qh[i] * kv_at<KT>(k, kr + i);
      scores[h * s_stride + r] = scale * s;
    }
}

template <DType KT>
void pv_rows(const float* p, int64_t p_stride, int n_heads, const void* v, int64_t v_stride, int n_rows,
             int64_t d, float* acc, int64_t o_stride) {
  for (int h = 0; h < n_heads; ++h)
    for (int r = 0; r < n_rows; ++r)
      for (int64_t i = 0; i < d; ++i)
        acc[h * o_stride + i] += p[h * p_stride + r] * kv_at<KT>(v, r * v_stride + i);
}

float exp_shift_sum(float* x, int64_t n, float shift) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - shift);
    s += x[i];
  }
  return s;
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

float sum_squares(const float* x, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}

float sum(const float* x, int64_t n) {
  float s[4] = {};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) s[j] += x[i + j];
  for (; i < n; ++i) s[0] += x[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

double fma_loop(int64_t iters) {
  constexpr int kChains = 8;
  float a[kChains];
  for (int j = 0; j < kChains; ++j) a[j] = static_cast<float>(j) * 1e-3f;
  for (int64_t it = 0; it < iters; ++it) {
    for (int j = 0; j < kChains; ++j) a[j] = a[j] * 0.999999f + 1e-7f;
    __asm__ volatile("" : "+m"(a));
  }
  volatile float sink = a[0] + a[kChains - 1];
  (void)sink;
  return static_cast<double>(iters) * kChains * 2;
}

}  // namespace

const KernelTable& scalar_kernels() {
  static const KernelTable table{
      .isa = Isa::kScalar,
      .linear_rows = linear_rows_scalar,
      .attn_f32 = {.qk_rows = qk_rows<DType::kF32>, .pv_rows = pv_rows<DType::kF32>},
      .attn_bf16 = {.qk_rows = qk_rows<DType::kBF16>, .pv_rows = pv_rows<DType::kBF16>},
      .attn_f8 = {.qk_rows = qk_rows<DType::kF8E4M3>, .pv_rows = pv_rows<DType::kF8E4M3>},
      .exp_shift_sum = exp_shift_sum,
      .silu_mul = silu_mul,
      .sum_squares = sum_squares,
      .sum = sum,
      .fma_loop = fma_loop,
  };
  return table;
}

}  // namespace tandem::ops::cpu
