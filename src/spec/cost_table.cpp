#include "spec/cost_table.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace tandem::spec {

CostTable::CostTable(int max_batch, int k_max) : k_max_(k_max) {
  TANDEM_CHECK(max_batch >= 1 && k_max >= 0, "cost table: batch {} / K {}", max_batch, k_max);
  for (int b = 1;; b *= 2) {
    buckets_.push_back(b);
    if (b >= max_batch) break;
  }
  for (auto& c : cells_) c.assign(buckets_.size() * static_cast<size_t>(k_max + 1), 0.0);
  for (auto& n : samples_) n.assign(buckets_.size() * static_cast<size_t>(k_max + 1), 0);
}

void CostTable::set(int bucket, int k, double verify_seconds, double draft_seconds) {
  at(kVerify, bucket, k) = verify_seconds;
  at(kDraft, bucket, k) = draft_seconds;
}

void CostTable::locate(int64_t batch, int& lo, double& frac) const {
  const int n = static_cast<int>(buckets_.size());
  lo = 0;
  while (lo + 1 < n && buckets_[lo + 1] <= batch) ++lo;
  frac = 0.0;
  if (lo + 1 < n && batch > buckets_[lo])
    frac = static_cast<double>(batch - buckets_[lo]) / static_cast<double>(buckets_[lo + 1] - buckets_[lo]);
}

void CostTable::refine(Part part, int64_t batch, int k, double seconds, double alpha) {
  if (empty() || k < 0 || k > k_max_) return;
  int lo = 0;
  double frac = 0;
  locate(batch, lo, frac);
  // The step informs the bucket it is nearest to; a step beyond the last bucket scales to it linearly.
  const int b = frac > 0.5 ? lo + 1 : lo;
  double s = seconds;
  if (batch > buckets_.back()) s *= static_cast<double>(buckets_.back()) / static_cast<double>(batch);
  double& c = at(part, b, k);
  int64_t& n = samples_[part][static_cast<size_t>(b) * (k_max_ + 1) + k];
  const double w = std::max(alpha, 1.0 / static_cast<double>(++n + 1));
  c = c > 0 ? (1 - w) * c + w * s : s;
}

double CostTable::cost(int64_t batch, int k) const {
  TANDEM_CHECK(!empty() && k >= 0 && k <= k_max_, "cost table: no cell for K = {}", k);
  int lo = 0;
  double frac = 0;
  locate(batch, lo, frac);
  double c = cell(lo, k);
  if (frac > 0) c = (1 - frac) * c + frac * cell(lo + 1, k);
  if (batch > buckets_.back()) c *= static_cast<double>(batch) / static_cast<double>(buckets_.back());
  return c;
}

std::string CostTable::format() const {
  std::string s = "batch";
  for (int k = 0; k <= k_max_; ++k) s += fmt::format("  K={:<6}", k);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    s += fmt::format("\n{:>5}", buckets_[b]);
    for (int k = 0; k <= k_max_; ++k) s += fmt::format("  {:<8.3f}", cell(static_cast<int>(b), k) * 1e3);
  }
  return s + "\n(ms per step)";
}

}  // namespace tandem::spec
