#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
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

// The caller's thread owns [0, 100) and the worker [100, 200). The caller's first piece (at most half its
// chunk) blocks until the worker has taken at least 50 items of the caller's chunk, which only stealing can
// give it, so no timing decides the outcome. Without stealing the wait times out and the test fails instead
// of hanging.
TEST(ThreadPool, BalancedLoopMovesWorkOffASlowThread) {
  ThreadPool pool(2);
  const std::thread::id caller = std::this_thread::get_id();
  const int64_t n = 200;
  std::mutex mu;
  std::condition_variable cv;
  int64_t stolen = 0;  // items of [0, 100) the worker ran; guarded by mu
  bool caller_blocked = false, timed_out = false;
  std::vector<std::pair<int64_t, int64_t>> caller_ranges;
  expect_each_item_once(n, [&](auto count) {
    pool.parallel_for_balanced(n, 1, [&](int64_t b, int64_t e) {
      std::unique_lock<std::mutex> lock(mu);
      if (std::this_thread::get_id() == caller) {
        caller_ranges.emplace_back(b, e);
        if (!caller_blocked) {  // the slow thread: stuck in its first piece until the worker has stolen
          caller_blocked = true;
          timed_out = !cv.wait_for(lock, std::chrono::seconds(30), [&] { return stolen >= n / 4; });
        }
      } else if (e <= n / 2) {
        stolen += e - b;
        cv.notify_all();
      }
      count(b, e);
    });
  });
  EXPECT_FALSE(timed_out) << "the idle worker took only " << stolen
                          << " of the blocked thread's items in 30 s";
  EXPECT_GE(stolen, n / 4);
  // (A caller that starts very late may find its whole chunk taken and make no call at all.)
  if (!caller_ranges.empty()) {
    EXPECT_LE(caller_ranges.front().second - caller_ranges.front().first, n / 4)
        << "first piece: half the chunk";
  }
}

// The plain loop's contract: one contiguous chunk per thread at most, each at least `grain` items (a single
// chunk when n < 2 * grain), together covering [0, n) in order, the caller's thread taking the first.
TEST(ThreadPool, PlainLoopGivesEachThreadOneContiguousChunkOfAtLeastGrain) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    for (int64_t n : {1, 2, 3, 5, 7, 10, 64, 1000, 100003})
      for (int64_t grain : {1, 2, 3, 4, 8, 20, 100, 4000}) {
        const std::thread::id caller = std::this_thread::get_id();
        std::mutex mu;
        std::map<std::thread::id, int> calls;
        std::vector<std::pair<int64_t, int64_t>> ranges;
        std::pair<int64_t, int64_t> caller_range{-1, -1};
        pool.parallel_for(n, grain, [&](int64_t b, int64_t e) {
          std::lock_guard<std::mutex> lock(mu);
          ranges.emplace_back(b, e);
          ++calls[std::this_thread::get_id()];
          if (std::this_thread::get_id() == caller) caller_range = {b, e};
        });
        const std::string where = "threads " + std::to_string(threads) + " n " + std::to_string(n) +
                                  " grain " + std::to_string(grain);
        std::sort(ranges.begin(), ranges.end());
        ASSERT_FALSE(ranges.empty()) << where;
        EXPECT_EQ(ranges.front().first, 0) << where;
        EXPECT_EQ(ranges.back().second, n) << where;
        for (size_t i = 0; i < ranges.size(); ++i) {
          EXPECT_GE(ranges[i].second - ranges[i].first, std::min(grain, n)) << where << " chunk " << i;
          if (i > 0) {
            EXPECT_EQ(ranges[i].first, ranges[i - 1].second) << where << ": not contiguous";
          }
        }
        EXPECT_LE(ranges.size(), static_cast<size_t>(threads)) << where;
        if (n >= 2 * grain && threads > 1) {
          EXPECT_GT(ranges.size(), 1u) << where << ": the loop was not split";
        }
        for (const auto& [id, k] : calls) EXPECT_EQ(k, 1) << where << ": a thread got more than one chunk";
        EXPECT_EQ(caller_range, ranges.front()) << where << ": the caller takes the first chunk";
      }
  }
}

// Runs `body` on a separate thread and fails (instead of hanging the suite) if it does not finish in time. On
// a timeout the thread is left behind and the process exits with the test's failure.
void expect_finishes_within(std::chrono::seconds limit, const std::function<void()>& body) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  std::thread([body, done] {
    body();
    done->set_value();
  }).detach();
  if (finished.wait_for(limit) != std::future_status::ready) {
    ADD_FAILURE() << "did not finish within " << limit.count() << " s (deadlock?)";
    std::fflush(nullptr);
    std::_Exit(1);  // the stuck thread holds the pool: no clean way to continue
  }
}

// A loop started from inside a loop of the same pool, on the caller's thread or a worker, runs inline on that
// thread: it used to deadlock (the outer call holds the pool, whose threads are all busy with it).
TEST(ThreadPool, NestedLoopsRunInlineInsteadOfDeadlocking) {
  expect_finishes_within(std::chrono::seconds(60), [] {
    for (int threads : {1, 2, 3}) {
      ThreadPool pool(threads);
      for (bool balanced_outer : {false, true})
        for (bool balanced_inner : {false, true}) {
          const int64_t n = 64, m = 50;
          std::vector<std::atomic<int>> seen(static_cast<size_t>(n * m));
          std::atomic<int> not_inline{0};
          auto inner = [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) {
              const std::thread::id outer_thread = std::this_thread::get_id();
              auto body = [&](int64_t ib, int64_t ie) {
                if (std::this_thread::get_id() != outer_thread || ib != 0 || ie != m) ++not_inline;
                for (int64_t k = ib; k < ie; ++k) ++seen[static_cast<size_t>(i * m + k)];
              };
              if (balanced_inner)
                pool.parallel_for_balanced(m, 1, body);
              else
                pool.parallel_for(m, 1, body);
            }
          };
          if (balanced_outer)
            pool.parallel_for_balanced(n, 1, inner);
          else
            pool.parallel_for(n, 1, inner);
          EXPECT_EQ(not_inline.load(), 0) << "a nested loop left its thread or was split";
          for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << "item " << i;
          // The pool still works normally after nesting.
          expect_each_item_once(1000, [&](auto fn) { pool.parallel_for(1000, 1, fn); });
        }
    }
  });
}

// Loops from several threads at once are serialised, not interleaved or lost.
TEST(ThreadPool, ConcurrentCallersAreSerialised) {
  expect_finishes_within(std::chrono::seconds(60), [] {
    ThreadPool pool(3);
    std::vector<std::thread> callers;
    for (int t = 0; t < 4; ++t)
      callers.emplace_back([&pool, t] {
        for (int rep = 0; rep < 50; ++rep) {
          const int64_t n = 100 + t * 37 + rep;
          expect_each_item_once(n, [&](auto fn) {
            if (rep % 2)
              pool.parallel_for_balanced(n, 3, fn);
            else
              pool.parallel_for(n, 3, fn);
          });
        }
      });
    for (auto& c : callers) c.join();
  });
}

}  // namespace
}  // namespace tandem
