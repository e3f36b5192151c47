// AVX-512 linear kernel: 16 f32 lanes; tiles of 8 rows x up to 2 tokens or 4 rows x 4 tokens (16 zmm
// accumulators either way); paired bf16 loads (linear_tile.h). Tails use masked loads, so any in_features
// works without padding.
#include <immintrin.h>

#include "ops/cpu/gcc_avx512_workaround.h"
#include "ops/cpu/hsum_avx512.h"
#include "ops/cpu/linear_tile.h"

namespace tandem::ops::cpu {
namespace {

struct Avx512 {
  using Reg = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kRowTile = 8;
  static constexpr int kRowTileWide = 4;
  static constexpr int kTokTile = 4;
  static constexpr bool kPairedBf16 = true;
  // e4m3 bits moved into an f16 (bias 15) read 2^-8 times the e4m3 (bias 7) value.
  static constexpr float kF8Unit = 256.0f;

  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(Reg a) { return hsum_avx512(a); }
  static __mmask16 mask(int n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static Reg load_x(const float* p) { return _mm512_loadu_ps(p); }
  static Reg load_x_tail(const float* p, int n) { return _mm512_maskz_loadu_ps(mask(n), p); }

  // e4m3 -> f16 bits: sign-extend the byte to 16 bits and shift left 7, which puts the exponent and
  // mantissa at f16 bits 7..13 and the sign at bit 15 (bit 14 also receives the sign: cleared). f16
  // subnormals cover e4m3 subnormals exactly, and no f32 subnormal ever appears.
  static Reg f8_to_f32(__m128i bytes) {
    __m256i h = _mm256_slli_epi16(_mm256_cvtepi8_epi16(bytes), 7);
    h = _mm256_and_si256(h, _mm256_set1_epi16(static_cast<int16_t>(0xbfff)));
    return _mm512_cvtph_ps(h);
  }
  static Reg bf16_to_f32(__m256i v) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
  }

  // 32 bf16 weights [i, i + 32) as f32: even = elements i, i+2, ..., odd = i+1, i+3, ... (bf16 is the
  // high half of an f32, so a 32-bit pair shifted left by 16 is its even element, masked its odd one).
  static void split_bf16_pairs(__m512i v, Reg& even, Reg& odd) {
    even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int32_t>(0xffff0000u))));
  }
  static void split_pairs(const float* x, float* d) {
    const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    _mm512_storeu_ps(d, _mm512_permutex2var_ps(a, even, b));
    _mm512_storeu_ps(d + 16, _mm512_permutex2var_ps(a, odd, b));
  }
  static void load_bf16_pair(const void* row, int64_t i, Reg& even, Reg& odd) {
    split_bf16_pairs(_mm512_loadu_si512(static_cast<const uint16_t*>(row) + i), even, odd);
  }
  static void load_bf16_pair_tail(const void* row, int64_t i, int n, Reg& even, Reg& odd) {
    const __mmask32 m = static_cast<__mmask32>((uint64_t{1} << n) - 1u);
    split_bf16_pairs(_mm512_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + i), even, odd);
  }

  template <DType WT>
  static Reg load_w(const void* row, int64_t i) {
    if constexpr (WT == DType::kF32) {
      return _mm512_loadu_ps(static_cast<const float*>(row) + i);
    } else if constexpr (WT == DType::kBF16) {
      return bf16_to_f32(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i)));
    } else if constexpr (WT == DType::kF16) {
      return _mm512_cvtph_ps(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + i)));
    } else {
      return f8_to_f32(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(row) + i)));
    }
  }
  template <DType WT>
  static Reg load_w_tail(const void* row, int64_t i, int n) {
    const __mmask16 m = mask(n);
    if constexpr (WT == DType::kF32) {
      return _mm512_maskz_loadu_ps(m, static_cast<const float*>(row) + i);
    } else if constexpr (WT == DType::kBF16) {
      return bf16_to_f32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + i));
    } else if constexpr (WT == DType::kF16) {
      return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(row) + i));
    } else {
      return f8_to_f32(_mm_maskz_loadu_epi8(m, static_cast<const uint8_t*>(row) + i));
    }
  }
};

}  // namespace

void linear_rows_avx512(const LinearProblem& p, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  linear_tile::linear_rows<Avx512>(p, r0, r1, t0, t1);
}

}  // namespace tandem::ops::cpu
