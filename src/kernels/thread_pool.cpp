#include "kernels/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace ug {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How a thread waits for an atomic to change: a short busy spin (back-to-back matmuls of a
// decode step are microseconds apart, so this avoids a syscall per call), then a few yields (when
// the machine is oversubscribed the thread we wait for may need our core), then the futex, so
// idle workers do not burn CPU.
constexpr int kSpinIterations = 256;
constexpr int kYieldIterations = 16;

template <class T>
T wait_while_equal(const std::atomic<T>& a, T old) {
  T now = a.load(std::memory_order_acquire);
  for (int i = 0; now == old && i < kSpinIterations; ++i) {
    cpu_relax();
    now = a.load(std::memory_order_acquire);
  }
  for (int i = 0; now == old && i < kYieldIterations; ++i) {
    std::this_thread::yield();
    now = a.load(std::memory_order_acquire);
  }
  while (now == old) {
    a.wait(old, std::memory_order_acquire);
    now = a.load(std::memory_order_acquire);
  }
  return now;
}

// Set while a thread is executing a job of some pool: a nested run() then executes inline.
thread_local bool t_inside_pool_job = false;

}  // namespace

// Fork-join protocol. run() publishes the job and a new generation; indices are claimed from
// `claim` = (generation << 32 | next index) with a CAS, so each index runs exactly once. The caller
// runs index 0 and then claims whatever the workers have not claimed yet: a worker that is slow
// to wake (descheduled on a busy machine) delays nothing. The caller returns once `completed`
// reaches n, i.e. after every claimed index has finished.
struct ThreadPool::State {
  int n = 1;
  uint32_t last_generation = 0;         // written by run() under run_mutex only
  std::atomic<uint32_t> generation{0};  // what workers sleep on
  std::atomic<uint64_t> claim{0};       // generation << 32 | next unclaimed index
  std::atomic<uint32_t> completed{0};   // indices finished in the current run
  std::atomic<bool> stop{false};
  const std::function<void(int)>* job = nullptr;  // published by the release store of `claim`

  std::mutex error_mutex;
  std::exception_ptr first_error;

  std::mutex run_mutex;  // serialises run() calls from different threads
  std::vector<std::thread> workers;

  void record_error(std::exception_ptr e) {
    std::lock_guard<std::mutex> lock(error_mutex);
    if (!first_error) first_error = std::move(e);
  }

  void execute(int index) {
    t_inside_pool_job = true;
    try {
      (*job)(index);
    } catch (...) {
      record_error(std::current_exception());
    }
    t_inside_pool_job = false;
    if (completed.fetch_add(1, std::memory_order_acq_rel) + 1 == uint32_t(n)) {
      completed.notify_all();
    }
  }

  // Claims and runs indices of generation `gen` until none are left.
  void drain(uint32_t gen) {
    uint64_t c = claim.load(std::memory_order_acquire);
    while (uint32_t(c >> 32) == gen && int(uint32_t(c)) < n) {
      if (claim.compare_exchange_weak(c, c + 1, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        execute(int(uint32_t(c)));
        c = claim.load(std::memory_order_acquire);
      }
    }
  }

  void worker_loop() {
    uint32_t seen = 0;  // generation is 0 when workers start
    for (;;) {
      seen = wait_while_equal(generation, seen);
      if (stop.load(std::memory_order_acquire)) return;
      drain(seen);
    }
  }
};

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads), state_(std::make_unique<State>()) {
  if (n_threads < 1 || n_threads > 4096) {
    throw std::invalid_argument("ThreadPool: n_threads must be in [1, 4096], got " +
                                std::to_string(n_threads));
  }
  state_->n = n_threads;
  state_->workers.reserve(size_t(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) {
    state_->workers.emplace_back([s = state_.get()] { s->worker_loop(); });
  }
}

ThreadPool::~ThreadPool() {
  state_->stop.store(true, std::memory_order_release);
  state_->generation.fetch_add(1, std::memory_order_acq_rel);
  state_->generation.notify_all();
  for (auto& t : state_->workers) t.join();
}

void ThreadPool::run(const std::function<void(int thread_index)>& fn) {
  if (n_threads_ == 1 || t_inside_pool_job) {
    // Single participant, or a nested call from inside a job (the workers are busy): run every
    // index here, in order. Same results, no parallelism.
    for (int i = 0; i < n_threads_; ++i) fn(i);
    return;
  }
  State& s = *state_;
  std::lock_guard<std::mutex> run_lock(s.run_mutex);
  s.first_error = nullptr;
  s.job = &fn;
  s.completed.store(0, std::memory_order_relaxed);
  const uint32_t gen = ++s.last_generation;
  // Index 0 is reserved for the caller. The release store publishes job/completed/first_error.
  s.claim.store(uint64_t(gen) << 32 | 1u, std::memory_order_release);
  s.generation.store(gen, std::memory_order_release);
  s.generation.notify_all();  // cheap when nobody sleeps (libstdc++ counts waiters)

  s.execute(0);
  s.drain(gen);
  for (uint32_t done = s.completed.load(std::memory_order_acquire); done != uint32_t(n_threads_);) {
    done = wait_while_equal(s.completed, done);
  }
  s.job = nullptr;
  if (s.first_error) {
    std::exception_ptr e = s.first_error;
    s.first_error = nullptr;
    std::rethrow_exception(e);
  }
}

void ThreadPool::parallel_for(int64_t n, int64_t grain,
                              const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t max_chunks = std::max<int64_t>(1, n / grain);  // every chunk >= grain
  const int64_t chunks = std::min<int64_t>(n_threads_, max_chunks);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  // One contiguous, nearly equal chunk per participant (the first n % chunks get one extra).
  const int64_t base = n / chunks;
  const int64_t extra = n % chunks;
  auto body = [&](int index) {
    if (index >= chunks) return;
    const int64_t begin = index * base + std::min<int64_t>(index, extra);
    const int64_t end = begin + base + (index < extra ? 1 : 0);
    fn(begin, end);
  };
  run(body);
}

}  // namespace ug
