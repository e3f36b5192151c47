// The engine thread. EngineLoop owns the Engine and the one thread that calls step(): it sleeps on a
// condition variable while no request is in flight (no busy spin), steps while there is work, and runs
// the engine's output callbacks, which move each output into the submitting HTTP request's OutputQueue.
// HTTP threads only submit, abort and pop; they never touch the engine's batch.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "server/metrics.h"

namespace tandem::server {

using Clock = std::chrono::steady_clock;

/// One engine output, tagged with the API-level choice (index within the HTTP request) it belongs to.
struct TaggedOutput {
  int choice = 0;
  engine::RequestOutput out;
};

/// The output channel of one HTTP request (all its choices): the engine thread pushes, an HTTP thread pops.
class OutputQueue {
 public:
  void push(int choice, const engine::RequestOutput& out);
  /// Waits up to `timeout` for output, then moves everything queued into `out` (appending).
  /// Returns false when nothing arrived in time.
  bool pop_all(std::vector<TaggedOutput>& out, std::chrono::milliseconds timeout);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TaggedOutput> q_;
};

class EngineLoop {
 public:
  /// Starts the engine thread. Time-to-first-token and inter-token latencies go to `metrics`.
  EngineLoop(std::unique_ptr<engine::Engine> engine, Metrics& metrics);
  ~EngineLoop();
  EngineLoop(const EngineLoop&) = delete;
  EngineLoop& operator=(const EngineLoop&) = delete;

  /// Queues a request whose outputs go to `queue` tagged with `choice`; `arrival` starts its latency clock
  /// (observed into the TTFT / inter-token histograms unless `observe` is false: health probes).
  /// Throws tandem::Error when the engine rejects the request (nothing is queued then). Thread-safe.
  uint64_t submit(engine::GenerateRequest request, std::shared_ptr<OutputQueue> queue, int choice,
                  Clock::time_point arrival, bool observe = true);
  /// Aborts a request (no-op when finished): its KV is freed at the next step. Thread-safe.
  void abort(uint64_t id);

  engine::EngineSnapshot snapshot() const { return engine_->snapshot(); }
  const engine::Engine& engine() const { return *engine_; }
  /// Engine requests submitted and not yet finished.
  int64_t in_flight() const;

  /// Drops every prefix-cache key (/flush_cache) on the engine thread; false if that did not happen within
  /// `timeout`. Thread-safe.
  bool flush_prefix_cache(std::chrono::milliseconds timeout);

  /// Aborts whatever is in flight, lets the engine retire it, and joins the thread. Idempotent.
  void stop();

 private:
  void run();
  void fail_all(const std::string& error);

  std::unique_ptr<engine::Engine> engine_;
  Metrics& metrics_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool wake_ = false;  // step once although nothing is in flight (a flush request)
  // id -> destination, for failing every request if a step throws. Guarded by mu_.
  std::unordered_map<uint64_t, std::pair<std::shared_ptr<OutputQueue>, int>> live_;
  uint64_t outputs_ = 0;  // outputs delivered; engine thread only
  std::once_flag stop_once_;
  std::thread thread_;
};

}  // namespace tandem::server
