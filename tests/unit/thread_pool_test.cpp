#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace tandem {
namespace {

/// Runs one loop and checks that every item of [0, n) was handed out exactly once, in ranges inside [0, n).
template <class Loop>
void expect_each_item_once(int64_t n, Loop&& loop) {
  std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
  std::atomic<int> bad_ranges{0};
  loop([&](int64_t b, int64_t e) {
    if (b < 0 || e > n || b >= e) ++bad_ranges;
    for (int64_t i = std::max<int64_t>(b, 0); i < std::min(e, n); ++i) ++seen[static_cast<size_t>(i)];
  });
  EXPECT_EQ(bad_ranges.load(), 0) << "n " << n;
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(seen[static_cast<size_t>(i)].load(), 1) << "item " << i << " of " << n;
}

TEST(ThreadPool, EveryLoopCoversEachItemOnce) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 3, 7, 64, 1000, 100003})
      for (int64_t grain : {1, 3, 8, 20, 100, 4000}) {  // balanced pieces of 1, 1, 2, 5, 25 and 1000 items
        expect_each_item_once(n, [&](auto fn) { pool.parallel_for(n, grain, fn); });
        expect_each_item_once(n, [&](auto fn) { pool.parallel_for_balanced(n, grain, fn); });
      }
  }
}

TEST(ThreadPool, BalancedLoopMovesWorkOffASlowThread) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  const int64_t n = 200;  // the caller owns [0, 100) and is slow at it; the worker owns [100, 200)
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> worker_ranges;
  expect_each_item_once(n, [&](auto count) {
    pool.parallel_for_balanced(n, 1, [&](int64_t b, int64_t e) {
      if (std::this_thread::get_id() == caller) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1) * (e - b));
      } else {
        std::lock_guard<std::mutex> lock(mu);
        worker_ranges.emplace_back(b, e);
      }
      count(b, e);
    });
  });
  int64_t stolen = 0;
  for (auto [b, e] : worker_ranges)
    if (e <= n / 2) stolen += e - b;
  // The caller's first piece is half its chunk (50 items, 50 ms); the worker, done with its own chunk at
  // once, takes the other half from the back while the caller sleeps (all 50 unless it starts very late).
  EXPECT_GE(stolen, 40) << "the idle worker took only " << stolen << " of the slow thread's items";
}

TEST(ThreadPool, PlainLoopGivesEachThreadOneContiguousChunk) {
  ThreadPool pool(2);
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  pool.parallel_for(10, 1, [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(mu);
    ranges.emplace_back(b, e);
  });
  std::sort(ranges.begin(), ranges.end());
  EXPECT_EQ(ranges, (std::vector<std::pair<int64_t, int64_t>>{{0, 5}, {5, 10}}));
}

}  // namespace
}  // namespace tandem
