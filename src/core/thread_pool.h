// A fixed pool of worker threads for data-parallel loops inside one op. Owned by a backend and passed
// explicitly; there is no process-wide pool.
//
// Concurrency contract: calls from different threads are serialised (one loop runs at a time). A loop started
// from inside fn on a thread that is running one of this pool's loops (the caller of the outer loop or one of
// the pool's workers) is nested: it runs inline, fn(0, n) on that thread, instead of waiting for threads that
// are busy with the outer loop (which would deadlock).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tandem {

class ThreadPool {
 public:
  /// n_threads == 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  /// Calls fn(begin, end) over [0, n) split into contiguous chunks of at least `grain` items (one chunk of n
  /// when n < 2 * grain), at most one chunk per thread (the caller's thread takes the first). Blocks until
  /// all chunks are done. Nested inside another loop of this pool, runs fn(0, n) inline. fn must not throw.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  /// Like parallel_for, but balanced for loops whose time per item varies from thread to thread (streaming
  /// weights from memory, where a core's share of the bus and its start-up delay decide its speed): [0, n)
  /// is split into up to ceil(n / grain) chunks (so a chunk may be shorter than `grain`), and each thread
  /// works through its own chunk front to back in pieces, the first half of it, then half of what is left,
  /// down to a quarter of `grain` (kPiecesPerGrain); a thread done with its chunk takes pieces from the back
  /// of the others'. fn may therefore be called several times per thread, on disjoint ranges that together
  /// cover [0, n) exactly once. Threads finish within about one piece of each other instead of one thread's
  /// slowness. Nested inside another loop of this pool, runs fn(0, n) inline. fn must not throw.
  void parallel_for_balanced(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  /// Unclaimed items [front, back) of one thread's chunk, packed as front << 32 | back.
  struct alignas(64) Chunk {
    std::atomic<uint64_t> range{0};
  };

  /// Both loops: parallel_for when !balanced, else parallel_for_balanced.
  void dispatch(int64_t n, int64_t grain, bool balanced, const std::function<void(int64_t, int64_t)>& fn);
  void run(int index, const std::function<void(int64_t, int64_t)>& fn);
  void worker_loop(int index);

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable start_cv_;
  std::condition_variable done_cv_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  int job_chunks_ = 0;
  int64_t job_piece_ = 0;  // > 0: a balanced job over chunks_
  std::vector<Chunk> chunks_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;
  std::mutex call_mu_;  // one parallel_for at a time
};

}  // namespace tandem
