// A persistent pool of worker threads with a cheap fork-join barrier.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace ug {

class ThreadPool {
 public:
  // n_threads total participants including the calling thread (>= 1).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index) on every participant (the caller is index 0) and returns when all are
  // done.
  void run(const std::function<void(int thread_index)>& fn);

  // Splits [0, n) into contiguous chunks of at least `grain` and runs fn(begin, end) on them.
  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

 private:
  struct State;
  int n_threads_;
  std::unique_ptr<State> state_;
};

}  // namespace ug
