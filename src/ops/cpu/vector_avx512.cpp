// AVX-512 vector kernels for attention, activations and the machine probe.
#include "ops/cpu/gcc_avx512_workaround.h"

#include <immintrin.h>

#include "ops/cpu/dispatch.h"
#include "ops/cpu/hsum_avx512.h"

namespace tandem::ops::cpu {
namespace {

__mmask16 tail_mask(int64_t n) { return static_cast<__mmask16>((1u << n) - 1u); }

// exp with the Cephes expf polynomial (max error ~2 ulp on [-87, 88]); scalef applies 2^n, so results
// underflow gracefully to 0 for very negative inputs.
__m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.7f)), _mm512_set1_ps(-104.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

void dot_rows(const float* q, const float* k, int64_t k_stride, int n_rows, int64_t d, float scale, float* out) {
  for (int r = 0; r < n_rows; ++r) {
    const float* kr = k + r * k_stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= d; i += 32) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(kr + i), a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), _mm512_loadu_ps(kr + i + 16), a1);
    }
    for (; i < d; i += 16) {
      const __mmask16 m = d - i >= 16 ? static_cast<__mmask16>(0xffff) : tail_mask(d - i);
      a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, kr + i), a0);
    }
    out[r] = scale * hsum_avx512(_mm512_add_ps(a0, a1));
  }
}

void axpy_rows(const float* p, const float* v, int64_t v_stride, int n_rows, int64_t d, float* acc) {
  for (int64_t i = 0; i < d; i += 16) {
    const __mmask16 m = d - i >= 16 ? static_cast<__mmask16>(0xffff) : tail_mask(d - i);
    __m512 a = _mm512_maskz_loadu_ps(m, acc + i);
    for (int r = 0; r < n_rows; ++r)
      a = _mm512_fmadd_ps(_mm512_set1_ps(p[r]), _mm512_maskz_loadu_ps(m, v + r * v_stride + i), a);
    _mm512_mask_storeu_ps(acc + i, m, a);
  }
}

float exp_shift_sum(float* x, int64_t n, float shift) {
  __m512 s = _mm512_setzero_ps();
  const __m512 sh = _mm512_set1_ps(shift);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : tail_mask(n - i);
    const __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), sh));
    _mm512_mask_storeu_ps(x + i, m, e);
    s = _mm512_mask_add_ps(s, m, s, e);
  }
  return hsum_avx512(s);
}

void silu_mul(const float* gate, const float* up, float* out, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : tail_mask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 u = _mm512_maskz_loadu_ps(m, up + i);
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(silu, u));
  }
}

// Four accumulators keep enough loads in flight to measure memory rather than add latency.
template <bool kSquare>
float reduce(const float* x, int64_t n) {
  __m512 a[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  int64_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int j = 0; j < 4; ++j) {
      const __m512 v = _mm512_loadu_ps(x + i + 16 * j);
      a[j] = kSquare ? _mm512_fmadd_ps(v, v, a[j]) : _mm512_add_ps(a[j], v);
    }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? static_cast<__mmask16>(0xffff) : tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    a[0] = kSquare ? _mm512_fmadd_ps(v, v, a[0]) : _mm512_add_ps(a[0], v);
  }
  return hsum_avx512(_mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])));
}

float sum_squares(const float* x, int64_t n) { return reduce<true>(x, n); }
float sum(const float* x, int64_t n) { return reduce<false>(x, n); }

// 16 independent FMA chains: enough to cover FMA latency x throughput on current cores.
double fma_loop(int64_t iters) {
  constexpr int kChains = 16;
  __m512 a[kChains];
  for (int j = 0; j < kChains; ++j) a[j] = _mm512_set1_ps(static_cast<float>(j) * 1e-3f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    for (int j = 0; j < kChains; ++j) a[j] = _mm512_fmadd_ps(a[j], m, c);
    // Keeps the compiler from collapsing iterations; emits no instruction.
    __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]), "+v"(a[6]),
                     "+v"(a[7]));
    __asm__ volatile("" : "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]), "+v"(a[12]), "+v"(a[13]),
                     "+v"(a[14]), "+v"(a[15]));
  }
  __m512 s = a[0];
  for (int j = 1; j < kChains; ++j) s = _mm512_add_ps(s, a[j]);
  volatile float sink = hsum_avx512(s);
  (void)sink;
  return static_cast<double>(iters) * kChains * 16 * 2;
}

}  // namespace

const KernelTable& avx512_kernels() {
  static const KernelTable table{
      .isa = Isa::kAvx512,
      .linear_rows = linear_rows_avx512,
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
