#include "server/engine_loop.h"

#include "core/error.h"
#include "core/log.h"

namespace tandem::server {

void OutputQueue::push(int choice, const engine::RequestOutput& out) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    q_.push_back(TaggedOutput{choice, out});
  }
  cv_.notify_all();
}

bool OutputQueue::pop_all(std::vector<TaggedOutput>& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return !q_.empty(); })) return false;
  for (auto& o : q_) out.push_back(std::move(o));
  q_.clear();
  return true;
}

EngineLoop::EngineLoop(std::unique_ptr<engine::Engine> engine, Metrics& metrics)
    : engine_(std::move(engine)), metrics_(metrics) {
  thread_ = std::thread([this] { run(); });
}

EngineLoop::~EngineLoop() { stop(); }

int64_t EngineLoop::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(live_.size());
}

uint64_t EngineLoop::submit(engine::GenerateRequest request, std::shared_ptr<OutputQueue> queue, int choice,
                            Clock::time_point arrival, bool observe) {
  // Latency bookkeeping lives in the callback: it only ever runs on the engine thread.
  struct Timing {
    Clock::time_point arrival;
    Clock::time_point last;
    bool first = true;
  };
  auto timing = std::make_shared<Timing>(Timing{arrival, arrival, true});
  engine::OutputCallback cb = [this, queue, choice, timing, observe](const engine::RequestOutput& o) {
    ++outputs_;
    if (observe && !o.new_tokens.empty()) {
      const auto now = Clock::now();
      const double dt = std::chrono::duration<double>(now - timing->last).count();
      if (timing->first) metrics_.observe_ttft(dt);
      else metrics_.observe_itl(dt);
      timing->first = false;
      timing->last = now;
    }
    queue->push(choice, o);
    if (o.finished()) {
      std::lock_guard<std::mutex> lock(mu_);
      live_.erase(o.request_id);
    }
  };
  // Register before the engine can see the request, so the finish callback always finds the entry.
  std::unique_lock<std::mutex> lock(mu_);
  if (stop_) fail("the server is shutting down");
  const uint64_t id = engine_->submit(std::move(request), std::move(cb));
  live_.emplace(id, std::make_pair(std::move(queue), choice));
  lock.unlock();
  cv_.notify_all();
  return id;
}

void EngineLoop::abort(uint64_t id) {
  engine_->abort(id);
  cv_.notify_all();
}

void EngineLoop::run() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !live_.empty() || wake_; });
      if (stop_ && live_.empty()) return;
      wake_ = false;
    }
    bool progressed = false;
    const uint64_t outputs_before = outputs_;
    const int64_t passes_before = engine_->snapshot().counters.forward_passes;
    try {
      // A step that reports work but neither ran a forward pass nor produced an output is not progress
      // (e.g. everything left is waiting for KV blocks): treat it as idle so the thread never spins.
      progressed = engine_->step() && (outputs_ != outputs_before ||
                                       engine_->snapshot().counters.forward_passes != passes_before);
    } catch (const std::exception& e) {
      // A step that throws leaves no guarantee about the batch: fail every request in flight loudly rather
      // than let clients wait forever, and keep serving new ones.
      log::error("engine step failed: {}; failing all {} requests in flight", e.what(), in_flight());
      fail_all(std::string("engine step failed: ") + e.what());
    }
    if (!progressed) {
      // Nothing schedulable although requests are live (their finish is still in the inbox): don't spin.
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(2));
    }
  }
}

bool EngineLoop::flush_prefix_cache(std::chrono::milliseconds timeout) {
  const uint64_t ticket = engine_->flush_prefix_cache();
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
  const auto deadline = Clock::now() + timeout;
  while (engine_->prefix_cache_flushes() < ticket) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void EngineLoop::fail_all(const std::string& error) {
  std::unordered_map<uint64_t, std::pair<std::shared_ptr<OutputQueue>, int>> live;
  {
    std::lock_guard<std::mutex> lock(mu_);
    live.swap(live_);
  }
  for (auto& [id, dest] : live) {
    engine_->abort(id);
    engine::RequestOutput o;
    o.request_id = id;
    o.finish = engine::FinishReason::kError;
    o.error = error;
    dest.first->push(dest.second, o);
  }
}

void EngineLoop::stop() {
  // call_once: a second caller (e.g. a second SIGTERM racing the main thread) waits for the first to finish.
  std::call_once(stop_once_, [this] {
    std::vector<uint64_t> ids;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      for (const auto& [id, dest] : live_) ids.push_back(id);
    }
    for (uint64_t id : ids) engine_->abort(id);
    cv_.notify_all();
    thread_.join();
  });
}

}  // namespace tandem::server
