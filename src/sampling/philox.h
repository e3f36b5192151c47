// Philox4x32-10: the counter-based random number generator of Salmon, Moraes, Dror and Shaw, "Parallel
// random numbers: as easy as 1, 2, 3" (SC 2011), as specified by their Random123 library. A pure function
// of (counter, key): no state to carry, so any thread (or, later, any CUDA thread) can draw the number for
// any position directly. Plain 32/64-bit integer arithmetic only, so the same code compiles for a device
// (TANDEM_HD is __host__ __device__ under nvcc). Checked against Random123's tests/kat_vectors in
// tests/unit/sampling_test.cpp.
#pragma once

#include <cstdint>

#ifndef TANDEM_HD
#if defined(__CUDACC__)
#define TANDEM_HD __host__ __device__
#else
#define TANDEM_HD
#endif
#endif

namespace tandem::sampling::philox {

/// 128-bit counter / output block, word 0 first (Random123's array order).
struct Block {
  uint32_t w[4];
};
/// 64-bit key, word 0 first.
struct Key {
  uint32_t w[2];
};

inline constexpr uint32_t kMul0 = 0xD2511F53u;   // round multipliers
inline constexpr uint32_t kMul1 = 0xCD9E8D57u;
inline constexpr uint32_t kBump0 = 0x9E3779B9u;  // key schedule (golden ratio, sqrt(3) - 1)
inline constexpr uint32_t kBump1 = 0xBB67AE85u;
inline constexpr int kRounds = 10;

/// One Philox S-box round: two 32x32 -> 64-bit products, their halves permuted and xored with the key.
TANDEM_HD constexpr Block single_round(Block x, Key k) {
  const uint64_t p0 = static_cast<uint64_t>(kMul0) * x.w[0];
  const uint64_t p1 = static_cast<uint64_t>(kMul1) * x.w[2];
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  return Block{{hi1 ^ x.w[1] ^ k.w[0], lo1, hi0 ^ x.w[3] ^ k.w[1], lo0}};
}

/// Philox4x32 with `rounds` rounds (10 is the published, Crush-resistant choice); the key is bumped by
/// (kBump0, kBump1) before every round after the first.
TANDEM_HD constexpr Block philox4x32(Block counter, Key key, int rounds = kRounds) {
  for (int r = 0; r < rounds; ++r) {
    if (r > 0) key = Key{{key.w[0] + kBump0, key.w[1] + kBump1}};
    counter = single_round(counter, key);
  }
  return counter;
}

/// The block for (seed, position): key = seed (low word first), counter = {position low, position high,
/// 0, 0}. Counter words 2 and 3 are reserved for further independent streams of the same seed.
TANDEM_HD constexpr Block block(uint64_t seed, uint64_t position) {
  return philox4x32(Block{{static_cast<uint32_t>(position), static_cast<uint32_t>(position >> 32), 0u, 0u}},
                    Key{{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)}});
}

/// Uniform double in [0, 1) on the grid k * 2^-53 from the top 53 bits of (w[0] << 32 | w[1]) of
/// block(seed, position). Exact (no rounding), so identical on every IEEE-754 host and device; the
/// largest value is 1 - 2^-53.
TANDEM_HD constexpr double uniform(uint64_t seed, uint64_t position) {
  const Block b = block(seed, position);
  const uint64_t bits = (static_cast<uint64_t>(b.w[0]) << 32 | b.w[1]) >> 11;
  return static_cast<double>(bits) * 0x1.0p-53;
}

}  // namespace tandem::sampling::philox
