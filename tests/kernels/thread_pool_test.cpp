#include "kernels/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace ug {
namespace {

TEST(ThreadPool, EveryIndexRunsOncePerCall) {
  for (int n : {1, 2, 3, 5}) {
    ThreadPool pool(n);
    EXPECT_EQ(pool.size(), n);
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    for (auto& h : hits) h = 0;
    constexpr int kRuns = 300;
    for (int run = 0; run < kRuns; ++run) {
      pool.run([&](int index) {
        ASSERT_GE(index, 0);
        ASSERT_LT(index, n);
        hits[size_t(index)].fetch_add(1, std::memory_order_relaxed);
      });
    }
    for (int i = 0; i < n; ++i) EXPECT_EQ(hits[size_t(i)].load(), kRuns) << "n=" << n;
  }
}

TEST(ThreadPool, CallerIsIndexZeroAndJoinPublishesWrites) {
  ThreadPool pool(3);
  const auto caller = std::this_thread::get_id();
  for (int run = 0; run < 200; ++run) {
    std::vector<int> slots(3, -1);  // plain ints: the join must make the writes visible
    std::thread::id id0;
    pool.run([&](int index) {
      slots[size_t(index)] = run + index;
      if (index == 0) id0 = std::this_thread::get_id();
    });
    EXPECT_EQ(id0, caller);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(slots[size_t(i)], run + i);
  }
}

TEST(ThreadPool, WorkersRunConcurrentlyWithTheCaller) {
  // Index 0 (the caller) waits until index 1 has run: only possible if a worker claimed it.
  ThreadPool pool(2);
  for (int round = 0; round < 3; ++round) {
    std::atomic<bool> one_ran{false};
    std::atomic<bool> saw_one{false};
    std::thread::id id1;
    pool.run([&](int index) {
      if (index == 1) {
        id1 = std::this_thread::get_id();
        one_ran.store(true);
        return;
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (!one_ran.load() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      saw_one.store(one_ran.load());
    });
    EXPECT_TRUE(saw_one.load());
    EXPECT_NE(id1, std::this_thread::get_id());
  }
}

TEST(ThreadPool, WakesUpAfterSleeping) {
  ThreadPool pool(2);
  std::atomic<int> count{0};
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // workers go to the futex
    pool.run([&](int) { count.fetch_add(1); });
  }
  EXPECT_EQ(count.load(), 6);
}

TEST(ThreadPool, ParallelForCoversRangeExactlyOnce) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 2, 7, 100, 1001}) {
    for (int64_t grain : {1, 3, 64, 5000}) {
      std::vector<std::atomic<int>> seen(static_cast<size_t>(n));
      for (auto& s : seen) s = 0;
      std::atomic<int> chunks{0};
      pool.parallel_for(n, grain, [&](int64_t begin, int64_t end) {
        ASSERT_LE(0, begin);
        ASSERT_LT(begin, end);
        ASSERT_LE(end, n);
        // Chunks respect the grain unless the whole range is smaller.
        ASSERT_GE(end - begin, std::min<int64_t>(grain, n));
        chunks.fetch_add(1);
        for (int64_t i = begin; i < end; ++i) seen[size_t(i)].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[size_t(i)].load(), 1) << n << " " << grain;
      EXPECT_LE(chunks.load(), 3);
    }
  }
}

TEST(ThreadPool, ExceptionsPropagateAndPoolStaysUsable) {
  ThreadPool pool(3);
  for (int thrower : {0, 1, 2}) {
    EXPECT_THROW(pool.run([&](int index) {
      if (index == thrower) throw std::runtime_error("boom");
    }),
                 std::runtime_error);
    std::atomic<int> count{0};
    pool.run([&](int) { count.fetch_add(1); });
    EXPECT_EQ(count.load(), 3);
  }
  // Every participant throws: exactly one exception reaches the caller.
  EXPECT_THROW(pool.run([](int) { throw std::logic_error("all"); }), std::logic_error);
  EXPECT_THROW(pool.parallel_for(10, 1,
                                 [](int64_t b, int64_t) {
                                   if (b > 0) throw std::out_of_range("chunk");
                                 }),
               std::out_of_range);
  std::atomic<int> count{0};
  pool.run([&](int) { count.fetch_add(1); });
  EXPECT_EQ(count.load(), 3);
}

TEST(ThreadPool, NestedRunExecutesInline) {
  ThreadPool pool(2);
  std::atomic<int> inner{0};
  pool.run([&](int) { pool.run([&](int) { inner.fetch_add(1); }); });
  EXPECT_EQ(inner.load(), 4);  // each of the 2 outer participants ran both inner indices
}

TEST(ThreadPool, RejectsBadSize) {
  EXPECT_THROW(ThreadPool(0), std::invalid_argument);
  EXPECT_THROW(ThreadPool(-3), std::invalid_argument);
}

TEST(ThreadPool, ManyPoolsCreatedAndDestroyed) {
  for (int i = 0; i < 50; ++i) {
    ThreadPool pool(2 + i % 3);
    std::atomic<int> count{0};
    if (i % 2) pool.run([&](int) { count.fetch_add(1); });
    EXPECT_EQ(count.load(), i % 2 ? 2 + i % 3 : 0);
  }
}

}  // namespace
}  // namespace ug
