// C(batch, K): the seconds one engine step takes when `batch` decoding requests each verify K drafts (K = 0:
// plain decode rows) and draft K for the next step, kept as two parts: the verify part (target forward of
// batch x (K + 1) rows, the logits' download, sampling / verification) and the draft part (the draft's extend
// and chain for K drafts; at K = 0 the hidden stash copy). Measured on the real path at start-up
// (engine/cost_calibration.h) and refined online from every timed step, each part by the K it ran (a step that
// verifies K = 1 and drafts K = 3 refines verify(1) and draft(3)); the adaptive policy divides expected tokens by
// their sum. Batch sizes are bucketed by powers of two and interpolated linearly between buckets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tandem::spec {

class CostTable {
 public:
  CostTable() = default;
  /// Buckets 1, 2, 4, ... up to the first power of two >= max_batch; K in 0..k_max. All cells start unknown.
  CostTable(int max_batch, int k_max);

  enum Part { kVerify = 0, kDraft = 1 };
  /// Sets a cell from a start-up measurement.
  void set(int bucket, int k, double verify_seconds, double draft_seconds);
  /// Folds a timed part of a step into the nearest bucket's cell: the running mean of the start-up value and the
  /// timed steps until that weighs less than `alpha`, then an exponential moving average of weight `alpha` (the
  /// first real steps quickly outweigh a start-up timing that was off).
  void refine(Part part, int64_t batch, int k, double seconds, double alpha = 0.1);
  /// Interpolated seconds per step for `batch` requests at K = k.
  [[nodiscard]] double cost(int64_t batch, int k) const;

  [[nodiscard]] const std::vector<int>& buckets() const { return buckets_; }
  [[nodiscard]] int k_max() const { return k_max_; }
  /// Seconds of a bucket's step at K (both parts).
  [[nodiscard]] double cell(int bucket, int k) const { return part(kVerify, bucket, k) + part(kDraft, bucket, k); }
  [[nodiscard]] double part(Part p, int bucket, int k) const { return cells_[p][static_cast<size_t>(bucket) * (k_max_ + 1) + k]; }
  [[nodiscard]] bool empty() const { return buckets_.empty(); }
  /// The table as text, milliseconds, one row per batch bucket (for the start-up log and `tandem bench`).
  [[nodiscard]] std::string format() const;

 private:
  double& at(Part p, int bucket, int k) { return cells_[p][static_cast<size_t>(bucket) * (k_max_ + 1) + k]; }
  /// The bucket index at or below `batch` and the weight of the next one.
  void locate(int64_t batch, int& lo, double& frac) const;

  std::vector<int> buckets_;   // [n_buckets] batch sizes 1, 2, 4, ...
  int k_max_ = 0;
  std::vector<double> cells_[2];   // [part] [n_buckets, k_max + 1] seconds
  std::vector<int64_t> samples_[2];  // [part] [n_buckets, k_max + 1] timed steps folded in
};

}  // namespace tandem::spec
