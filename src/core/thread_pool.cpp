#include "core/thread_pool.h"

#include <algorithm>

namespace tandem {

namespace {
// A decode step issues ~100 short parallel loops; waking sleeping threads through a futex costs tens of
// microseconds each, which at batch 1 is a large share of the step. Threads therefore spin briefly on the
// job counter before they block (and block again once the pool is idle).
constexpr int kSpinIterations = 20000;
// A balanced loop's smallest piece is grain / kPiecesPerGrain items: small enough that threads end close
// together, large enough (a quarter of the work worth waking a thread for) that claiming stays cheap.
constexpr int64_t kPiecesPerGrain = 4;

// The pool whose loop this thread is running (as the loop's caller or as one of the pool's workers), so that
// a loop started from inside fn can tell it is nested.
thread_local const ThreadPool* t_running_pool = nullptr;

/// Marks the calling thread as running `pool`'s loop for its lifetime.
class RunningPool {
 public:
  explicit RunningPool(const ThreadPool* pool) : previous_(t_running_pool) { t_running_pool = pool; }
  ~RunningPool() { t_running_pool = previous_; }
  RunningPool(const RunningPool&) = delete;
  RunningPool& operator=(const RunningPool&) = delete;

 private:
  const ThreadPool* previous_;
};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

void chunk_range(int64_t n, int chunks, int index, int64_t* b, int64_t* e) {
  const int64_t base = n / chunks, rem = n % chunks;
  *b = index * base + std::min<int64_t>(index, rem);
  *e = *b + base + (index < rem ? 1 : 0);
}

uint64_t pack(int64_t front, int64_t back) {
  return static_cast<uint64_t>(front) << 32 | static_cast<uint64_t>(back);
}

/// Claims items from the front (the chunk's owner) or the back (any other thread) of a chunk's unclaimed
/// range: half of what is left, at least `piece`. False when nothing is left.
bool claim(std::atomic<uint64_t>& range, bool from_front, int64_t piece, int64_t* b, int64_t* e) {
  uint64_t v = range.load(std::memory_order_relaxed);
  for (;;) {
    const auto front = static_cast<int64_t>(v >> 32), back = static_cast<int64_t>(v & 0xffffffffu);
    if (front >= back) return false;
    const int64_t take = std::min(back - front, std::max(piece, (back - front) / 2));
    const uint64_t next = from_front ? pack(front + take, back) : pack(front, back - take);
    if (range.compare_exchange_weak(v, next, std::memory_order_relaxed)) {
      *b = from_front ? front : back - take;
      *e = *b + take;
      return true;
    }
  }
}

int resolve_threads(int n_threads) {
  return n_threads > 0 ? n_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : chunks_(static_cast<size_t>(resolve_threads(n_threads))) {
  for (int i = 1; i < static_cast<int>(chunks_.size()); ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  dispatch(n, grain, false, fn);
}

void ThreadPool::parallel_for_balanced(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  // Claimed ranges are packed in 32 bits; a longer loop (none in tandem) is split statically.
  dispatch(n, grain, n <= int64_t{0xffffffff}, fn);
}

void ThreadPool::dispatch(int64_t n, int64_t grain, bool balanced, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t piece = balanced ? std::max<int64_t>(1, grain / kPiecesPerGrain) : 0;
  // Plain loops: n / grain chunks (rounded down) keep every chunk at least `grain` items long. Balanced loops
  // round up: their chunks are shared out in pieces anyway.
  const int64_t wanted = balanced ? (n + grain - 1) / grain : n / grain;
  const int chunks = static_cast<int>(std::min<int64_t>(size(), wanted));
  // Nested: every thread of this pool may be busy with the outer loop (and call_mu_ is held), so run inline.
  if (chunks <= 1 || t_running_pool == this) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_n_ = n;
    job_chunks_ = chunks;
    job_piece_ = piece;
    if (piece > 0)
      for (int c = 0; c < chunks; ++c) {
        int64_t b, e;
        chunk_range(n, chunks, c, &b, &e);
        chunks_[static_cast<size_t>(c)].range.store(pack(b, e), std::memory_order_relaxed);
      }
    pending_.store(chunks - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  start_cv_.notify_all();
  {
    const RunningPool running(this);
    run(0, fn);
  }
  for (int i = 0; i < kSpinIterations && pending_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
  }
}

void ThreadPool::run(int index, const std::function<void(int64_t, int64_t)>& fn) {
  int64_t b, e;
  if (job_piece_ == 0) {
    chunk_range(job_n_, job_chunks_, index, &b, &e);
    fn(b, e);
    return;
  }
  while (claim(chunks_[static_cast<size_t>(index)].range, true, job_piece_, &b, &e)) fn(b, e);
  for (int k = 1; k < job_chunks_; ++k)
    while (claim(chunks_[static_cast<size_t>((index + k) % job_chunks_)].range, false, job_piece_, &b, &e)) fn(b, e);
}

void ThreadPool::worker_loop(int index) {
  const RunningPool running(this);  // a worker only ever runs this pool's loops
  uint64_t seen = 0;
  for (;;) {
    for (int i = 0; i < kSpinIterations && generation_.load(std::memory_order_acquire) == seen; ++i) cpu_relax();
    const std::function<void(int64_t, int64_t)>* job;
    int chunks;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_acquire) != seen; });
      if (stop_) return;
      seen = generation_.load(std::memory_order_acquire);
      job = job_;
      chunks = job_chunks_;
    }
    if (index < chunks) {
      run(index, *job);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);
        done_cv_.notify_all();
      }
    }
  }
}

}  // namespace tandem
