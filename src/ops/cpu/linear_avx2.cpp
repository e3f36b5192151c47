// AVX2 + FMA + F16C linear kernel: 8 f32 lanes, tiles of 4 rows x 2 tokens (8 of the 16 ymm registers
// hold accumulators). AVX2 has no byte/word masked loads, so weight tails go through a zeroed stack copy.
#include <immintrin.h>

#include <cstring>

#include "ops/cpu/linear_tile.h"

namespace tandem::ops::cpu {
namespace {

struct Avx2 {
  using Reg = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kRowTile = 4;
  static constexpr int kRowTileWide = 4;
  static constexpr bool kPairedBf16 = false;
  static constexpr int kTokTile = 2;
  static constexpr float kF8Unit = 256.0f;  // see linear_avx512.cpp: e4m3 goes through f16

  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(Reg a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static __m256i mask(int n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
  }
  static Reg load_x(const float* p) { return _mm256_loadu_ps(p); }
  static Reg load_x_tail(const float* p, int n) { return _mm256_maskload_ps(p, mask(n)); }

  static Reg f8_to_f32(__m128i bytes) {  // low 8 bytes used
    __m128i h = _mm_slli_epi16(_mm_cvtepi8_epi16(bytes), 7);
    h = _mm_and_si128(h, _mm_set1_epi16(static_cast<int16_t>(0xbfff)));
    return _mm256_cvtph_ps(h);
  }
  static Reg bf16_to_f32(__m128i v) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
  }

  template <DType WT>
  static Reg convert(const void* p) {
    if constexpr (WT == DType::kF32) {
      return _mm256_loadu_ps(static_cast<const float*>(p));
    } else if constexpr (WT == DType::kBF16) {
      return bf16_to_f32(_mm_loadu_si128(static_cast<const __m128i*>(p)));
    } else if constexpr (WT == DType::kF16) {
      return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p)));
    } else {
      return f8_to_f32(_mm_loadl_epi64(static_cast<const __m128i*>(p)));
    }
  }
  template <DType WT>
  static Reg load_w(const void* row, int64_t i) {
    return convert<WT>(static_cast<const char*>(row) + i * linear_tile::weight_bytes<WT>());
  }
  template <DType WT>
  static Reg load_w_tail(const void* row, int64_t i, int n) {
    alignas(32) unsigned char buf[32] = {};
    std::memcpy(buf, static_cast<const char*>(row) + i * linear_tile::weight_bytes<WT>(),
                static_cast<size_t>(n) * linear_tile::weight_bytes<WT>());
    return convert<WT>(buf);
  }
};

}  // namespace

void linear_rows_avx2(const LinearProblem& p, int64_t r0, int64_t r1, int64_t t0, int64_t t1) {
  linear_tile::linear_rows<Avx2>(p, r0, r1, t0, t1);
}

}  // namespace tandem::ops::cpu
