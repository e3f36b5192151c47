// Per-request random stream. Each request owns one, so its samples do not depend on which other requests
// share its batch (batch invariance) or on thread scheduling.
#pragma once

#include <cstdint>
#include <random>

namespace tandem::sampling {

class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  /// Uniform in [0, 1).
  double uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(gen_); }

 private:
  std::mt19937_64 gen_;
};

}  // namespace tandem::sampling
