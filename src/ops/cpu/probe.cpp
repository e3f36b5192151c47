#include "ops/cpu/probe.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

#include "core/proc_file.h"
#include "ops/cpu/dispatch.h"
#include "tensor/tensor.h"

namespace tandem::ops::cpu {
namespace {

constexpr int kRuns = 4;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Best (shortest) time of kRuns calls of fn over [0, n) items split across the pool.
template <class Fn>
double best_time(ThreadPool& pool, int64_t n, Fn&& fn) {
  double best = 1e30;
  for (int run = 0; run < kRuns; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(n, 1, fn);
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

}  // namespace

double measure_copy_bandwidth_gbs(ThreadPool& pool, size_t bytes) {
  const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
  // Buffer memory is not initialised: fill both so every page is backed before timing starts (an untouched
  // page faults on first write, and reads of it all hit the one shared zero page).
  Buffer src(DType::kF32, {n}), dst(DType::kF32, {n});
  std::memset(src.view().data, 1, static_cast<size_t>(n) * sizeof(float));
  std::memset(dst.view().data, 0, static_cast<size_t>(n) * sizeof(float));
  const char* s = static_cast<const char*>(src.view().data);
  char* d = static_cast<char*>(dst.view().data);
  const double t = best_time(pool, n, [&](int64_t b, int64_t e) {
    std::memcpy(d + b * sizeof(float), s + b * sizeof(float), static_cast<size_t>(e - b) * sizeof(float));
  });
  return 2.0 * static_cast<double>(n) * sizeof(float) / t / 1e9;
}

double measure_read_bandwidth_gbs(ThreadPool& pool, size_t bytes) {
  const int64_t n = static_cast<int64_t>(bytes / sizeof(float));
  Buffer buf(DType::kF32, {n});
  std::memset(buf.view().data, 0, static_cast<size_t>(n) * sizeof(float));  // back every page (see above)
  const float* p = buf.ptr<const float>();
  const KernelTable& k = kernel_table(best_isa());
  std::atomic<float> sink{0.0f};
  const double t = best_time(
      pool, n, [&](int64_t b, int64_t e) { sink.store(k.sum(p + b, e - b), std::memory_order_relaxed); });
  return static_cast<double>(n) * sizeof(float) / t / 1e9;
}

double measure_peak_gflops(ThreadPool& pool) {
  const KernelTable& k = kernel_table(best_isa());
  constexpr int64_t kIters = 20'000'000;  // ~0.1 s per thread at a few GHz
  std::atomic<double> flops{0.0};
  const int threads = pool.size();
  double best = 0.0;
  for (int run = 0; run < kRuns; ++run) {
    flops = 0.0;
    const auto t0 = std::chrono::steady_clock::now();
    pool.parallel_for(threads, 1, [&](int64_t b, int64_t e) {
      double f = 0.0;
      for (int64_t i = b; i < e; ++i) f += k.fma_loop(kIters);
      double cur = flops.load();
      while (!flops.compare_exchange_weak(cur, cur + f)) {
      }
    });
    best = std::max(best, flops.load() / seconds_since(t0) / 1e9);
  }
  return best;
}

size_t mem_available_bytes() { return proc_kib_field_bytes("/proc/meminfo", "MemAvailable:"); }

}  // namespace tandem::ops::cpu
