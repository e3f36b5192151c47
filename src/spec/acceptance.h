// Per-position acceptance estimates for the adaptive draft length. Position j's rate a_j is the conditional
// probability that draft j is accepted given drafts 1..j-1 were (the quantity the expected-tokens formula
// needs). Counts decay geometrically per verify step, so an estimate follows a request whose text changes
// character (code, then prose); a request's estimate leans on the server-wide one until it has evidence.
#pragma once

#include <array>
#include <cstdint>

#include "spec/stats.h"

namespace tandem::spec {

class AcceptanceEstimate {
 public:
  /// decay: weight kept by old evidence at each verify step (1: never forget).
  explicit AcceptanceEstimate(double decay = 0.9) : decay_(decay) {}

  /// One verify step that proposed `drafted` drafts of which the first `accepted` were accepted (the verifier's
  /// count, before stop tokens or max_tokens cut the output). Positions 1..min(accepted + 1, drafted) were tried.
  void record(int drafted, int accepted);

  /// a_j for j in 1..kMaxDraftTokens: (accepted_j + w * prior_j) / (tried_j + w), prior_j from `prior` (the
  /// server-wide estimate) or `fallback` when this is the server-wide estimate itself.
  [[nodiscard]] double rate(int j, const AcceptanceEstimate* prior, double prior_weight, double fallback) const;

  /// Expected tokens of a verify step with k drafts: E(k) = 1 + sum_{j<=k} prod_{i<=j} a_i.
  [[nodiscard]] double expected_tokens(int k, const AcceptanceEstimate* prior, double prior_weight,
                                       double fallback) const;

  /// Evidence (decayed verify steps that tried position j).
  [[nodiscard]] double tried(int j) const { return tried_[j - 1]; }

 private:
  double decay_;
  std::array<double, kMaxDraftTokens> tried_{};     // [j-1]: decayed count of steps that verified draft j
  std::array<double, kMaxDraftTokens> accepted_{};  // [j-1]: ... of which draft j was accepted
};

}  // namespace tandem::spec
