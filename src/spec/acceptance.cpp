#include "spec/acceptance.h"

#include <algorithm>

namespace tandem::spec {

void AcceptanceEstimate::record(int drafted, int accepted) {
  for (int j = 0; j < kMaxDraftTokens; ++j) {
    tried_[j] *= decay_;
    accepted_[j] *= decay_;
  }
  const int tried = std::min(accepted + 1, drafted);
  for (int j = 0; j < tried; ++j) {
    tried_[j] += 1.0;
    if (j < accepted) accepted_[j] += 1.0;
  }
}

double AcceptanceEstimate::rate(int j, const AcceptanceEstimate* prior, double prior_weight, double fallback) const {
  // A position never tried leans on the one before it (conditional acceptance rarely falls sharply with depth).
  double p = fallback;
  if (prior) p = prior->rate(j, nullptr, prior_weight, fallback);
  else if (j > 1) p = rate(j - 1, nullptr, prior_weight, fallback);
  const double n = tried_[j - 1] + prior_weight;
  return n > 0 ? (accepted_[j - 1] + prior_weight * p) / n : p;
}

double AcceptanceEstimate::expected_tokens(int k, const AcceptanceEstimate* prior, double prior_weight,
                                           double fallback) const {
  double e = 1.0, run = 1.0;
  for (int j = 1; j <= k; ++j) {
    run *= rate(j, prior, prior_weight, fallback);
    e += run;
  }
  return e;
}

}  // namespace tandem::spec
