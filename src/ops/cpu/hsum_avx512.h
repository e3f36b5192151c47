// Horizontal sum of a zmm register. Include only from *_avx512.cpp files (it needs their -m flags; static
// so copies in different files never merge). Avoids _mm512_reduce_add_ps, whose GCC 12 expansion trips
// -Werror=maybe-uninitialized inside avx512fintrin.h.
#pragma once

#include <immintrin.h>

namespace tandem::ops::cpu {

static inline float hsum_avx512(__m512 a) {
  const __m512 swapped = _mm512_shuffle_f32x4(a, a, _MM_SHUFFLE(1, 0, 3, 2));
  const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_castps512_ps256(swapped));
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

}  // namespace tandem::ops::cpu
