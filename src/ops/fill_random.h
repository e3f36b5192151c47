// The values Backend::fill_random writes, defined once for every backend: the CPU backend calls these
// functions and the CUDA kernel (ops/cuda/fill_random.cu) includes this header and calls the same ones, so
// one seed gives the same bits on every backend by construction (tests/unit/backend_ops_test.cpp checks it).
// Element i is a pure function of (seed, i), a counter-based generator, so how the work is split over threads
// or CUDA blocks does not change the tensor. Integer arithmetic and IEEE double add / multiply only
// (explicitly rounded on the GPU, where nvcc would otherwise contract them); plain C++ under a host compiler
// (TANDEM_HD is __host__ __device__ under nvcc, as in sampling/philox.h).
#pragma once

#include <bit>
#include <cstdint>

#ifndef TANDEM_HD
#if defined(__CUDACC__)
#define TANDEM_HD __host__ __device__
#else
#define TANDEM_HD
#endif
#endif

namespace tandem::ops::fill_random {

/// 64 well-mixed bits of (seed, i): splitmix64's output function (Steele, Lea and Flood, "Fast splittable
/// pseudorandom number generators", OOPSLA 2014) applied to the counter seed + (i + 1) * golden-ratio gamma.
TANDEM_HD inline uint64_t hash(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

TANDEM_HD inline uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  return std::bit_cast<uint32_t>(f);
#endif
}

/// Element i as f32, uniform in [lo, hi): u = (the top 24 bits of hash(seed, i)) * 2^-24, exact in [0, 1);
/// then lo + (hi - lo) * u in double, rounded to f32. For bounds of similar magnitude (every range
/// fill_random is used with) the difference and the product are exact in double, so the add is the only
/// rounding before the last.
TANDEM_HD inline float uniform(uint64_t seed, uint64_t i, float lo, float hi) {
  const double u = static_cast<double>(hash(seed, i) >> 40) * 0x1p-24;
  const double span = static_cast<double>(hi) - static_cast<double>(lo);
#if defined(__CUDA_ARCH__)
  return __double2float_rn(__dadd_rn(static_cast<double>(lo), __dmul_rn(span, u)));
#else
  return static_cast<float>(static_cast<double>(lo) + span * u);
#endif
}

/// m >> shift rounded to nearest, ties to even (shift >= 1; 0 when shift >= 32, where m < 2^24 is below
/// half).
TANDEM_HD inline uint32_t shift_right_rne(uint32_t m, int shift) {
  if (shift >= 32) return 0;
  const uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
  // Bitwise, not || / &&: the round-up bit is data-dependent, and a branch on it mispredicts half the time.
  return q + (static_cast<uint32_t>(rem > half) | (static_cast<uint32_t>(rem == half) & q & 1u));
}

/// f32 -> bf16 bits, round-to-nearest-even, NaN kept quiet (core/dtype.h f32_to_bf16).
TANDEM_HD inline uint16_t to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

/// f32 -> IEEE binary16 bits, round-to-nearest-even, subnormals included; overflow to infinity, NaN quiet.
TANDEM_HD inline uint16_t to_f16(float f) {
  const uint32_t u = float_bits(f), a = u & 0x7fffffffu;
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  if (a > 0x7f800000u) return sign | 0x7e00u;   // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 rounds past 65504: infinity
  if (a >= 0x38800000u) {  // >= 2^-14: normal; keep 10 of 23 mantissa bits, rebias 127 -> 15
    const uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
    return sign | static_cast<uint16_t>((r >> 13) - (112u << 10));
  }
  const uint32_t e = a >> 23;  // subnormal: multiples of 2^-24, |f| / 2^-24 = m >> (126 - e)
  if (e == 0) return sign;     // f32 subnormals are far below 2^-25
  return sign |
         static_cast<uint16_t>(shift_right_rne((a & 0x7fffffu) | 0x800000u, 126 - static_cast<int>(e)));
}

/// f32 -> float8_e4m3fn bits: saturating to +-448, round-to-nearest-even, NaN to 0x7f (ops/cpu/attention.cpp
/// kv_f32_to_f8e4m3 and core/dtype.h f32_to_f8e4m3, bit for bit; checked by
/// tests/models/dummy_load_test.cpp).
TANDEM_HD inline uint8_t to_f8e4m3(float f) {
  const uint32_t u = float_bits(f), a = u & 0x7fffffffu;
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  if (a > 0x7f800000u) return 0x7f;          // NaN
  if (a >= 0x43e00000u) return sign | 0x7e;  // |f| >= 448 (or inf): the largest finite
  if (a < 0x3c800000u) {                     // |f| < 2^-6: subnormals, multiples of 2^-9: m >> (141 - e)
    const uint32_t e = a >> 23;
    if (e == 0) return sign;
    return sign |
           static_cast<uint8_t>(shift_right_rne((a & 0x7fffffu) | 0x800000u, 141 - static_cast<int>(e)));
  }
  const uint32_t r = a + 0x7ffffu + ((a >> 20) & 1u);  // keep 3 mantissa bits, rebias 127 -> 7
  return sign | static_cast<uint8_t>((r >> 20) - (120u << 3));
}

}  // namespace tandem::ops::fill_random
