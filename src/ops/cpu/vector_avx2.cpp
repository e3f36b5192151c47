// AVX2 + FMA vector kernels for attention, activations and the machine probe.
#include <immintrin.h>

#include <cmath>

#include "ops/cpu/dispatch.h"

namespace tandem::ops::cpu {
namespace {

__m256i tail_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

float hsum(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// exp with the Cephes expf polynomial; 2^n is built in the exponent field, so inputs are clamped to the
// normal range (exp(-87.3) ~ 1e-38 stands in for anything smaller).
__m256 exp_ps(__m256 x) {
  x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f)), _mm256_set1_ps(-87.3365447504f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // n in [-126, 127] after the clamp: (n + 127) << 23 is 2^n. n = 128 (x near the top) is split in two.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i half = _mm256_srai_epi32(ni, 1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

void dot_rows(const float* q, const float* k, int64_t k_stride, int n_rows, int64_t d, float scale, float* out) {
  for (int r = 0; r < n_rows; ++r) {
    const float* kr = k + r * k_stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= d; i += 16) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(kr + i), a0);
      a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(kr + i + 8), a1);
    }
    for (; i < d; i += 8) {
      const __m256i m = tail_mask(d - i);
      a0 = _mm256_fmadd_ps(_mm256_maskload_ps(q + i, m), _mm256_maskload_ps(kr + i, m), a0);
    }
    out[r] = scale * hsum(_mm256_add_ps(a0, a1));
  }
}

void axpy_rows(const float* p, const float* v, int64_t v_stride, int n_rows, int64_t d, float* acc) {
  for (int64_t i = 0; i < d; i += 8) {
    const __m256i m = tail_mask(d - i);
    __m256 a = _mm256_maskload_ps(acc + i, m);
    for (int r = 0; r < n_rows; ++r)
      a = _mm256_fmadd_ps(_mm256_set1_ps(p[r]), _mm256_maskload_ps(v + r * v_stride + i, m), a);
    _mm256_maskstore_ps(acc + i, m, a);
  }
}

float exp_shift_sum(float* x, int64_t n, float shift) {
  __m256 s = _mm256_setzero_ps();
  const __m256 sh = _mm256_set1_ps(shift);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = tail_mask(n - i);
    const __m256 e = _mm256_and_ps(exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), sh)), _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(x + i, m, e);
    s = _mm256_add_ps(s, e);
  }
  return hsum(s);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = tail_mask(n - i);
    const __m256 g = _mm256_maskload_ps(gate + i, m);
    const __m256 u = _mm256_maskload_ps(up + i, m);
    const __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g))));
    _mm256_maskstore_ps(out + i, m, _mm256_mul_ps(silu, u));
  }
}

template <bool kSquare>
float reduce(const float* x, int64_t n) {
  __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; ++j) {
      const __m256 v = _mm256_loadu_ps(x + i + 8 * j);
      a[j] = kSquare ? _mm256_fmadd_ps(v, v, a[j]) : _mm256_add_ps(a[j], v);
    }
  for (; i < n; i += 8) {
    const __m256 v = _mm256_maskload_ps(x + i, tail_mask(n - i));
    a[0] = kSquare ? _mm256_fmadd_ps(v, v, a[0]) : _mm256_add_ps(a[0], v);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
}

float sum_squares(const float* x, int64_t n) { return reduce<true>(x, n); }
float sum(const float* x, int64_t n) { return reduce<false>(x, n); }

double fma_loop(int64_t iters) {
  constexpr int kChains = 12;  // of 16 ymm registers; covers 2 FMA ports x 4-5 cycles latency
  __m256 a[kChains];
  for (int j = 0; j < kChains; ++j) a[j] = _mm256_set1_ps(static_cast<float>(j) * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int j = 0; j < kChains; ++j) a[j] = _mm256_fmadd_ps(a[j], m, c);
    __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]), "+x"(a[5]), "+x"(a[6]),
                     "+x"(a[7]), "+x"(a[8]), "+x"(a[9]), "+x"(a[10]), "+x"(a[11]));
  }
  __m256 s = a[0];
  for (int j = 1; j < kChains; ++j) s = _mm256_add_ps(s, a[j]);
  volatile float sink = hsum(s);
  (void)sink;
  return static_cast<double>(iters) * kChains * 8 * 2;
}

}  // namespace

const KernelTable& avx2_kernels() {
  static const KernelTable table{
      .isa = Isa::kAvx2,
      .linear_rows = linear_rows_avx2,
      .dot_rows = dot_rows,
      .axpy_rows = axpy_rows,
      .exp_shift_sum = exp_shift_sum,
      .silu_mul = silu_mul,
      .sum_squares = sum_squares,
      .sum = sum,
      .fma_loop = fma_loop,
  };
  return table;
}

}  // namespace tandem::ops::cpu
