// AVX-512 linear kernel: 16 f32 lanes, tiles of 4 rows x 4 tokens (16 zmm accumulators). Tails use masked
// loads, so any in_features works without padding.
#include <immintrin.h>

#include "ops/cpu/gcc_avx512_workaround.h"
#include "ops/cpu/hsum_avx512.h"
#include "ops/cpu/linear_tile.h"

namespace tandem::ops::cpu {
namespace {

struct Avx512 {
  using Reg = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kRowTile = 4;
  static constexpr int kTokTile = 4;
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
