// Prometheus metrics in vLLM's layout with a `tandem:` prefix (text exposition format 0.0.4). Latency
// histograms are observed by the engine loop and the API layer; gauges and counters that the engine owns
// (running / waiting requests, KV usage, token and speculative counters) are read from its snapshot at
// render time, so there is one source of truth for each number.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"

namespace tandem::server {

/// A cumulative histogram with fixed upper bounds (plus +Inf). Thread-safe.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  /// Appends `# HELP`, `# TYPE` and the _bucket / _sum / _count samples.
  void render(std::string& out, std::string_view name, std::string_view help) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative; last = +Inf
  double sum_ = 0.0;
  uint64_t n_ = 0;
};

class Metrics {
 public:
  Metrics();

  void observe_ttft(double seconds) { ttft_.observe(seconds); }
  void observe_itl(double seconds) { itl_.observe(seconds); }
  void observe_e2e(double seconds) { e2e_.observe(seconds); }
  /// One finished API-level choice: "stop", "length", "abort" or "error".
  void count_finished(std::string_view reason);

  /// The whole exposition. `speculative` adds the per-position acceptance counters.
  std::string render(const engine::EngineSnapshot& snapshot, bool speculative) const;

 private:
  Histogram ttft_, itl_, e2e_;
  mutable std::mutex mu_;
  std::map<std::string, uint64_t, std::less<>> finished_;
};

/// Mean acceptance length over the process: 1 + accepted / drafts (vLLM's definition; one verify pass
/// yields the accepted drafts plus one target token). 0 before the first verify pass.
double mean_accept_length(const engine::EngineCounters& c);

}  // namespace tandem::server
