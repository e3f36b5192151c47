// Portable vector kernels (the reference the SIMD tables are tested against, and the fallback).
#include <cmath>

#include "ops/cpu/dispatch.h"

namespace tandem::ops::cpu {
namespace {

void qk_rows(const float* q, int64_t q_stride, int n_heads, const float* k, int64_t k_stride, int n_rows,
             int64_t d, float scale, float* scores, int64_t s_stride) {
  for (int h = 0; h < n_heads; ++h)
    for (int r = 0; r < n_rows; ++r) {
      const float* qh = q + h * q_stride;
      const float* kr = k + r * k_stride;
      float s = 0.0f;
      for (int64_t i = 0; i < d; ++i) s += qh[i] * kr[i];
      scores[h * s_stride + r] = scale * s;
    }
}

void pv_rows(const float* p, int64_t p_stride, int n_heads, const float* v, int64_t v_stride, int n_rows,
             int64_t d, float* acc, int64_t o_stride) {
  for (int h = 0; h < n_heads; ++h)
    for (int r = 0; r < n_rows; ++r)
      for (int64_t i = 0; i < d; ++i) acc[h * o_stride + i] += p[h * p_stride + r] * v[r * v_stride + i];
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
      .qk_rows = qk_rows,
      .pv_rows = pv_rows,
      .exp_shift_sum = exp_shift_sum,
      .silu_mul = silu_mul,
      .sum_squares = sum_squares,
      .sum = sum,
      .fma_loop = fma_loop,
  };
  return table;
}

}  // namespace tandem::ops::cpu
