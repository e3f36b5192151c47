// AVX-512 vector kernels for attention, activations and the machine probe.
#include <immintrin.h>

#include "ops/cpu/dispatch.h"
#include "ops/cpu/gcc_avx512_workaround.h"
#include "ops/cpu/hsum_avx512.h"

namespace tandem::ops::cpu {
namespace {

__mmask16 tail_mask(int64_t n) {
  return static_cast<__mmask16>((1u << n) - 1u);
}

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

__mmask16 chunk_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : tail_mask(left);
}

// KV elements as f32 vectors. bf16 widens exactly (a shift); e4m3 goes through f16 (sign-extend, shift
// left 7, clear bit 14, as in linear_avx512.cpp), which reads 2^-8 times the e4m3 value, so the kernels fold
// kKvUnit = 256 into the score scale and into the probabilities. Both are exact power-of-two products, so
// every result has the bits it would have with the exact values.
template <DType KT>
constexpr float kKvUnit = KT == DType::kF8E4M3 ? 256.0f : 1.0f;

__m512 f8_to_f32_scaled(__m128i bytes) {
  __m256i h = _mm256_slli_epi16(_mm256_cvtepi8_epi16(bytes), 7);
  h = _mm256_and_si256(h, _mm256_set1_epi16(static_cast<int16_t>(0xbfff)));
  return _mm512_cvtph_ps(h);
}

__m512 bf16_to_f32(__m256i v) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

/// Elements [i, i + 16) of a KV row.
template <DType KT>
__m512 load_kv(const void* row, int64_t i) {
  if constexpr (KT == DType::kF32) {
    return _mm512_loadu_ps(static_cast<const float*>(row) + i);
  } else if constexpr (KT == DType::kBF16) {
    return bf16_to_f32(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i)));
  } else {
    return f8_to_f32_scaled(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(row) + i)));
  }
}

/// The elements of [i, i + 16) that `m` selects; the others read 0.
template <DType KT>
__m512 load_kv_masked(__mmask16 m, const void* row, int64_t i) {
  if constexpr (KT == DType::kF32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(row) + i);
  } else if constexpr (KT == DType::kBF16) {
    return bf16_to_f32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + i));
  } else {
    return f8_to_f32_scaled(_mm_maskz_loadu_epi8(m, static_cast<const uint8_t*>(row) + i));
  }
}

template <int NH, DType KT>
void qk_heads(const float* q, int64_t q_stride, const void* k, int64_t k_stride, int n_rows, int64_t d,
              float scale, float* scores, int64_t s_stride) {
  const float s = scale * kKvUnit<KT>;
  for (int r = 0; r < n_rows; ++r) {
    const int64_t kr = r * k_stride;
    __m512 acc[NH];
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h) acc[h] = _mm512_setzero_ps();
    for (int64_t i = 0; i < d; i += 16) {
      const __mmask16 m = chunk_mask(d - i);
      const __m512 kv = load_kv_masked<KT>(m, k, kr + i);
#pragma GCC unroll 4
      for (int h = 0; h < NH; ++h)
        acc[h] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + h * q_stride + i), kv, acc[h]);
    }
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h) scores[h * s_stride + r] = s * hsum_avx512(acc[h]);
  }
}

template <int NH, DType KT>
void pv_heads(const float* p, int64_t p_stride, const void* v, int64_t v_stride, int n_rows, int64_t d,
              float* acc, int64_t o_stride) {
  for (int64_t i = 0; i < d; i += 16) {
    const __mmask16 m = chunk_mask(d - i);
    __m512 a[NH];
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h) a[h] = _mm512_maskz_loadu_ps(m, acc + h * o_stride + i);
    for (int r = 0; r < n_rows; ++r) {
      const __m512 vv = load_kv_masked<KT>(m, v, r * v_stride + i);
#pragma GCC unroll 4
      for (int h = 0; h < NH; ++h)
        a[h] = _mm512_fmadd_ps(_mm512_set1_ps(p[h * p_stride + r] * kKvUnit<KT>), vv, a[h]);
    }
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h) _mm512_mask_storeu_ps(acc + h * o_stride + i, m, a[h]);
  }
}

// Specialisations for head_dim = 16 * C (64, 128) that keep two heads' q (or output accumulators) in
// registers, so each K/V load feeds two heads and the load ports stop being the bottleneck. Every (head,
// row) value goes through the same operations in the same order as qk_heads / pv_heads, so results do not
// depend on which path ran.
template <int C, DType KT>
void qk_pair(const float* q0, const float* q1, const void* k, int64_t k_stride, int n_rows, float scale,
             float* s0, float* s1) {
  const float s = scale * kKvUnit<KT>;
  __m512 qa[C], qb[C];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    qa[c] = _mm512_loadu_ps(q0 + 16 * c);
    qb[c] = _mm512_loadu_ps(q1 + 16 * c);
  }
  int r = 0;
  for (; r + 2 <= n_rows; r += 2) {
    const int64_t k0 = r * k_stride;
    const int64_t k1 = k0 + k_stride;
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00;  // [head][row]
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const __m512 kv0 = load_kv<KT>(k, k0 + 16 * c), kv1 = load_kv<KT>(k, k1 + 16 * c);
      a00 = _mm512_fmadd_ps(qa[c], kv0, a00);
      a01 = _mm512_fmadd_ps(qa[c], kv1, a01);
      a10 = _mm512_fmadd_ps(qb[c], kv0, a10);
      a11 = _mm512_fmadd_ps(qb[c], kv1, a11);
    }
    s0[r] = s * hsum_avx512(a00);
    s0[r + 1] = s * hsum_avx512(a01);
    s1[r] = s * hsum_avx512(a10);
    s1[r + 1] = s * hsum_avx512(a11);
  }
  if (r < n_rows) {
    const int64_t k0 = r * k_stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const __m512 kv = load_kv<KT>(k, k0 + 16 * c);
      a0 = _mm512_fmadd_ps(qa[c], kv, a0);
      a1 = _mm512_fmadd_ps(qb[c], kv, a1);
    }
    s0[r] = s * hsum_avx512(a0);
    s1[r] = s * hsum_avx512(a1);
  }
}

template <int C, DType KT>
void pv_pair(const float* p0, const float* p1, const void* v, int64_t v_stride, int n_rows, float* o0,
             float* o1) {
  __m512 a[C], b[C];
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    a[c] = _mm512_loadu_ps(o0 + 16 * c);
    b[c] = _mm512_loadu_ps(o1 + 16 * c);
  }
  for (int r = 0; r < n_rows; ++r) {
    const __m512 w0 = _mm512_set1_ps(p0[r] * kKvUnit<KT>), w1 = _mm512_set1_ps(p1[r] * kKvUnit<KT>);
    const int64_t vr = r * v_stride;
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const __m512 vv = load_kv<KT>(v, vr + 16 * c);
      a[c] = _mm512_fmadd_ps(w0, vv, a[c]);
      b[c] = _mm512_fmadd_ps(w1, vv, b[c]);
    }
  }
#pragma GCC unroll 16
  for (int c = 0; c < C; ++c) {
    _mm512_storeu_ps(o0 + 16 * c, a[c]);
    _mm512_storeu_ps(o1 + 16 * c, b[c]);
  }
}

template <int C, DType KT>
void qk_pairs(const float* q, int64_t q_stride, int n_heads, const void* k, int64_t k_stride, int n_rows,
              float scale, float* scores, int64_t s_stride) {
  int h = 0;
  for (; h + 2 <= n_heads; h += 2)
    qk_pair<C, KT>(q + h * q_stride, q + (h + 1) * q_stride, k, k_stride, n_rows, scale,
                   scores + h * s_stride, scores + (h + 1) * s_stride);
  if (h < n_heads)
    qk_heads<1, KT>(q + h * q_stride, q_stride, k, k_stride, n_rows, 16 * C, scale, scores + h * s_stride,
                    s_stride);
}

template <int C, DType KT>
void pv_pairs(const float* p, int64_t p_stride, int n_heads, const void* v, int64_t v_stride, int n_rows,
              float* acc, int64_t o_stride) {
  int h = 0;
  for (; h + 2 <= n_heads; h += 2)
    pv_pair<C, KT>(p + h * p_stride, p + (h + 1) * p_stride, v, v_stride, n_rows, acc + h * o_stride,
                   acc + (h + 1) * o_stride);
  if (h < n_heads)
    pv_heads<1, KT>(p + h * p_stride, p_stride, v, v_stride, n_rows, 16 * C, acc + h * o_stride, o_stride);
}

template <DType KT>
void qk_rows(const float* q, int64_t q_stride, int n_heads, const void* k, int64_t k_stride, int n_rows,
             int64_t d, float scale, float* scores, int64_t s_stride) {
  if (d == 128) return qk_pairs<8, KT>(q, q_stride, n_heads, k, k_stride, n_rows, scale, scores, s_stride);
  if (d == 64) return qk_pairs<4, KT>(q, q_stride, n_heads, k, k_stride, n_rows, scale, scores, s_stride);
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
  if (d == 128) return pv_pairs<8, KT>(p, p_stride, n_heads, v, v_stride, n_rows, acc, o_stride);
  if (d == 64) return pv_pairs<4, KT>(p, p_stride, n_heads, v, v_stride, n_rows, acc, o_stride);
  int h = 0;
  for (; h + 4 <= n_heads; h += 4)
    pv_heads<4, KT>(p + h * p_stride, p_stride, v, v_stride, n_rows, d, acc + h * o_stride, o_stride);
  for (; h < n_heads; ++h)
    pv_heads<1, KT>(p + h * p_stride, p_stride, v, v_stride, n_rows, d, acc + h * o_stride, o_stride);
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
#pragma GCC unroll 4
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

float sum_squares(const float* x, int64_t n) {
  return reduce<true>(x, n);
}
float sum(const float* x, int64_t n) {
  return reduce<false>(x, n);
}

// 16 independent FMA chains: enough to cover FMA latency x throughput on current cores. Named registers,
// not an array: GCC keeps an array of vectors in memory across iterations, which measures stores instead.
double fma_loop(int64_t iters) {
  __m512 a0 = _mm512_set1_ps(0.00f), a1 = _mm512_set1_ps(0.01f), a2 = _mm512_set1_ps(0.02f);
  __m512 a3 = _mm512_set1_ps(0.03f), a4 = _mm512_set1_ps(0.04f), a5 = _mm512_set1_ps(0.05f);
  __m512 a6 = _mm512_set1_ps(0.06f), a7 = _mm512_set1_ps(0.07f), a8 = _mm512_set1_ps(0.08f);
  __m512 a9 = _mm512_set1_ps(0.09f), a10 = _mm512_set1_ps(0.10f), a11 = _mm512_set1_ps(0.11f);
  __m512 a12 = _mm512_set1_ps(0.12f), a13 = _mm512_set1_ps(0.13f), a14 = _mm512_set1_ps(0.14f);
  __m512 a15 = _mm512_set1_ps(0.15f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm512_fmadd_ps(a0, m, c), a1 = _mm512_fmadd_ps(a1, m, c), a2 = _mm512_fmadd_ps(a2, m, c);
    a3 = _mm512_fmadd_ps(a3, m, c), a4 = _mm512_fmadd_ps(a4, m, c), a5 = _mm512_fmadd_ps(a5, m, c);
    a6 = _mm512_fmadd_ps(a6, m, c), a7 = _mm512_fmadd_ps(a7, m, c), a8 = _mm512_fmadd_ps(a8, m, c);
    a9 = _mm512_fmadd_ps(a9, m, c), a10 = _mm512_fmadd_ps(a10, m, c), a11 = _mm512_fmadd_ps(a11, m, c);
    a12 = _mm512_fmadd_ps(a12, m, c), a13 = _mm512_fmadd_ps(a13, m, c), a14 = _mm512_fmadd_ps(a14, m, c);
    a15 = _mm512_fmadd_ps(a15, m, c);
    // Keeps the compiler from collapsing iterations; emits no instruction.
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7));
    __asm__ volatile(""
                     : "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11), "+v"(a12), "+v"(a13), "+v"(a14), "+v"(a15));
  }
  const __m512 s0 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                                  _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  const __m512 s1 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                                  _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15)));
  volatile float sink = hsum_avx512(_mm512_add_ps(s0, s1));
  (void)sink;
  return static_cast<double>(iters) * 16 * 16 * 2;
}

}  // namespace

const KernelTable& avx512_kernels() {
  static const KernelTable table{
      .isa = Isa::kAvx512,
      .linear_rows = linear_rows_avx512,
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
