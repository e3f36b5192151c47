// Per-request randomness as a pure function of (seed, output position): the uniform that decides output
// token i of a request is philox::uniform(seed, i), whoever draws it and however many uniforms were drawn
// before. So a request's samples do not depend on which other requests share its batch (batch
// invariance), on thread scheduling, on preemption and recompute, or on whether its tokens come from a
// plain decode step or a speculative verify pass (one uniform per output position either way).
#pragma once

#include <cstdint>

#include "core/error.h"
#include "sampling/philox.h"

namespace tandem::sampling {

class CounterRng {
 public:
  explicit constexpr CounterRng(uint64_t seed) : seed_(seed) {}

  /// The uniform in [0, 1) for output position `position` (0 = the request's first output token).
  /// Stateless: the same position always gives the same value. Precondition: position >= 0.
  [[nodiscard]] double uniform(int64_t position) const {
    TANDEM_CHECK(position >= 0, "output position {} is negative", position);
    return philox::uniform(seed_, static_cast<uint64_t>(position));
  }
  [[nodiscard]] uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
};

}  // namespace tandem::sampling
