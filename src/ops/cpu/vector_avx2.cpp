// AVX2 + FMA vector kernels for attention, activations and the machine probe.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "ops/cpu/dispatch.h"

namespace tandem::ops::cpu {
namespace {

__m256i tail_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
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
  const __m256 s1 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(half, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, half), _mm256_set1_epi32(127)), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// KV elements as f32 vectors. bf16 widens exactly (a shift); e4m3 goes through f16 (sign-extend, shift
// left 7, clear bit 14, as in linear_avx2.cpp), which reads 2^-8 times the e4m3 value, so the kernels fold
// kKvUnit = 256 into the score scale and into the probabilities. Both are exact power-of-two products, so
// every result has the bits it would have with the exact values. AVX2 has no 8/16-bit masked loads: tails
// go through a zeroed copy.
template <DType KT>
constexpr float kKvUnit = KT == DType::kF8E4M3 ? 256.0f : 1.0f;

template <DType KT>
__m256 load_kv(const void* row, int64_t i, int64_t left) {
  if constexpr (KT == DType::kF32) {
    return _mm256_maskload_ps(static_cast<const float*>(row) + i, tail_mask(left));
  } else if constexpr (KT == DType::kBF16) {
    const uint16_t* p = static_cast<const uint16_t*>(row) + i;
    __m128i raw;
    if (left >= 8) {
      raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    } else {
      alignas(16) uint16_t tmp[8] = {};
      std::memcpy(tmp, p, static_cast<size_t>(left) * 2);
      raw = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    }
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
  } else {
    const uint8_t* p = static_cast<const uint8_t*>(row) + i;
    __m128i raw;
    if (left >= 8) {
      raw = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    } else {
      alignas(16) uint8_t tmp[16] = {};
      std::memcpy(tmp, p, static_cast<size_t>(left));
      raw = _mm_load_si128(reinterpret_cast<const __m128i*>(tmp));
    }
    __m128i h = _mm_slli_epi16(_mm_cvtepi8_epi16(raw), 7);
    h = _mm_and_si128(h, _mm_set1_epi16(static_cast<int16_t>(0xbfff)));
    return _mm256_cvtph_ps(h);
  }
}

template <int NH, DType KT>
void qk_heads(const float* q, int64_t q_stride, const void* k, int64_t k_stride, int n_rows, int64_t d,
              float scale, float* scores, int64_t s_stride) {
  const float s = scale * kKvUnit<KT>;
  for (int r = 0; r < n_rows; ++r) {
    const int64_t kr = r * k_stride;
    __m256 acc[NH];
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h) acc[h] = _mm256_setzero_ps();
    for (int64_t i = 0; i < d; i += 8) {
      const __m256i m = tail_mask(d - i);
      const __m256 kv = load_kv<KT>(k, kr + i, d - i);
#pragma GCC unroll 4
      for (int h = 0; h < NH; ++h)
        acc[h] = _mm256_fmadd_ps(_mm256_maskload_ps(q + h * q_stride + i, m), kv, acc[h]);
    }
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h) scores[h * s_stride + r] = s * hsum(acc[h]);
  }
}

template <int NH, DType KT>
void pv_heads(const float* p, int64_t p_stride, const void* v, int64_t v_stride, int n_rows, int64_t d,
              float* acc, int64_t o_stride) {
  for (int64_t i = 0; i < d; i += 8) {
    const __m256i m = tail_mask(d - i);
    __m256 a[NH];
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h) a[h] = _mm256_maskload_ps(acc + h * o_stride + i, m);
    for (int r = 0; r < n_rows; ++r) {
      const __m256 vv = load_kv<KT>(v, r * v_stride + i, d - i);
#pragma GCC unroll 4
      for (int h = 0; h < NH; ++h)
        a[h] = _mm256_fmadd_ps(_mm256_set1_ps(p[h * p_stride + r] * kKvUnit<KT>), vv, a[h]);
    }
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h) _mm256_maskstore_ps(acc + h * o_stride + i, m, a[h]);
  }
}

template <DType KT>
void qk_rows(const float* q, int64_t q_stride, int n_heads, const void* k, int64_t k_stride, int n_rows,
             int64_t d, float scale, float* scores, int64_t s_stride) {
  int h = 0;
  for (; h + 4 <= n_heads; h += 4)
    qk_heads<4, KT>(q + h * q_stride, q_stride, k, k_stride, n_rows, d, scale, scores + h * s_stride,
                    s_stride);
  for (; h < n_heads; ++h)
    qk_heads<1, KT>(q + h * q_stride, q_stride, k, k_stride, n_rows, d, scale, scores + h * s_stride,
                    s_stride);
}

template <DType KT>
void pv_rows(const float* p, int64_t p_stride, int n_heads, const void* v, int64_t v_stride, int n_rows,
             int64_t d, float* acc, int64_t o_stride) {
  int h = 0;
  for (; h + 4 <= n_heads; h += 4)
    pv_heads<4, KT>(p + h * p_stride, p_stride, v, v_stride, n_rows, d, acc + h * o_stride, o_stride);
  for (; h < n_heads; ++h)
    pv_heads<1, KT>(p + h * p_stride, p_stride, v, v_stride, n_rows, d, acc + h * o_stride, o_stride);
}

float exp_shift_sum(float* x, int64_t n, float shift) {
  __m256 s = _mm256_setzero_ps();
  const __m256 sh = _mm256_set1_ps(shift);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = tail_mask(n - i);
    const __m256 e =
        _mm256_and_ps(exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), sh)), _mm256_castsi256_ps(m));
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
#pragma GCC unroll 4
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

float sum_squares(const float* x, int64_t n) {
  return reduce<true>(x, n);
}
float sum(const float* x, int64_t n) {
  return reduce<false>(x, n);
}

// 12 independent FMA chains (of 16 ymm registers) cover 2 FMA ports x 4-5 cycles latency. Named registers:
// GCC keeps an array of vectors in memory across iterations, which would measure stores instead.
double fma_loop(int64_t iters) {
  __m256 a0 = _mm256_set1_ps(0.00f), a1 = _mm256_set1_ps(0.01f), a2 = _mm256_set1_ps(0.02f);
  __m256 a3 = _mm256_set1_ps(0.03f), a4 = _mm256_set1_ps(0.04f), a5 = _mm256_set1_ps(0.05f);
  __m256 a6 = _mm256_set1_ps(0.06f), a7 = _mm256_set1_ps(0.07f), a8 = _mm256_set1_ps(0.08f);
  __m256 a9 = _mm256_set1_ps(0.09f), a10 = _mm256_set1_ps(0.10f), a11 = _mm256_set1_ps(0.11f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm256_fmadd_ps(a0, m, c), a1 = _mm256_fmadd_ps(a1, m, c), a2 = _mm256_fmadd_ps(a2, m, c);
    a3 = _mm256_fmadd_ps(a3, m, c), a4 = _mm256_fmadd_ps(a4, m, c), a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c), a7 = _mm256_fmadd_ps(a7, m, c), a8 = _mm256_fmadd_ps(a8, m, c);
    a9 = _mm256_fmadd_ps(a9, m, c), a10 = _mm256_fmadd_ps(a10, m, c), a11 = _mm256_fmadd_ps(a11, m, c);
    __asm__ volatile("" : "+x"(a0), "+x"(a1), "+x"(a2), "+x"(a3), "+x"(a4), "+x"(a5));
    __asm__ volatile("" : "+x"(a6), "+x"(a7), "+x"(a8), "+x"(a9), "+x"(a10), "+x"(a11));
  }
  const __m256 s =
      _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                    _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)),
                                  _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11))));
  volatile float sink = hsum(s);
  (void)sink;
  return static_cast<double>(iters) * 12 * 8 * 2;
}

}  // namespace

const KernelTable& avx2_kernels() {
  static const KernelTable table{
      .isa = Isa::kAvx2,
      .linear_rows = linear_rows_avx2,
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
