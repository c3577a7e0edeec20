// Throughput of the matmul kernels on 12B-sized matrices: GB/s of weights streamed for decode
// (one token) and GFLOP/s for prefill (many tokens), plus a plain streaming-read baseline.
//
//   build/release/kernels_bench [--quick] [--threads 1,2] [--type Q4_0]... [--tokens 64]...
//       [--no-stream | --stream-only] [--no-lm-head] [--rows 15360]
//   (few --rows: cache-resident, measures compute; --stream-only: the bandwidth ceiling that
//   bench/run.sh divides by the bytes a decoded token streams)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "format/tensor_type.h"
#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"
#include "kernels/thread_pool.h"

namespace {

using namespace ug;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Random bytes with sane block scales (no NaN/inf/subnormal slowdowns).
std::vector<uint8_t> make_matrix(TensorType type, int64_t rows, int64_t cols) {
  const int64_t row_bytes = type_row_bytes(type, cols);
  std::vector<uint8_t> m(size_t(rows * row_bytes));
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i + 8 <= m.size(); i += 8) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    std::memcpy(&m[i], &s, 8);
  }
  const int64_t be = type_block_elems(type), bb = type_block_bytes(type);
  const uint16_t d = kernels::fp32_to_fp16(0.01f);
  const int64_t blocks = rows * cols / be;
  for (int64_t b = 0; b < blocks; ++b) {
    uint8_t* p = m.data() + b * bb;
    switch (type) {
      case TensorType::F32: {
        const float v = 0.01f * float(b % 7);
        std::memcpy(p, &v, 4);
        break;
      }
      case TensorType::F16:
      case TensorType::BF16:
        std::memcpy(p, &d, 2);
        break;
      case TensorType::Q8_0:
      case TensorType::Q4_0:
        std::memcpy(p, &d, 2);
        break;
      case TensorType::Q4_K:
      case TensorType::Q5_K:
        std::memcpy(p, &d, 2);
        std::memcpy(p + 2, &d, 2);
        break;
      case TensorType::Q6_K:
        std::memcpy(p + 208, &d, 2);
        break;
      default:
        break;
    }
  }
  return m;
}

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

// CPU seconds per run of the last time_median() call: on a busy machine wall time mostly
// measures the scheduler; CPU time per run still tracks the kernel (spin-waits included).
double g_last_cpu_seconds = 0.0;

// Median wall time of `reps` runs after one warm-up.
template <class Fn>
double time_median(int reps, const Fn& fn) {
  fn();
  std::vector<double> t;
  const double cpu0 = process_cpu_seconds();
  for (int i = 0; i < reps; ++i) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(seconds_since(t0));
  }
  g_last_cpu_seconds = (process_cpu_seconds() - cpu0) / reps;
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Streaming read of 1 GiB: the decode ceiling's numerator. Integer sums (a float sum must keep
// its order, and its add latency capped the first version of this loop at ~12 GB/s per core) over
// several streams per thread; the first version measured 14-15 GB/s on 2 threads, while Q8_0 decode
// was then seen streaming 24 GB/s.
void bench_stream(const std::vector<int>& thread_counts) {
  const int64_t n = int64_t(1) << 27;  // 1 GiB of 64-bit words
  constexpr int kStreams = 8;
  std::vector<uint64_t> a(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) a[size_t(i)] = uint64_t(i);
  for (int threads : thread_counts) {
    ThreadPool pool(threads);
    std::vector<uint64_t> sums(static_cast<size_t>(threads));
    const double t = time_median(5, [&] {
      pool.run([&](int tid) {
        // Eight streams per thread, as a decode tile reads several weight rows at once: one
        // stream per core leaves the memory system idle between the prefetcher's requests.
        const int64_t per = n / threads / kStreams;
        const uint64_t* p = a.data() + tid * per * kStreams;
        uint64_t s[kStreams] = {};
        for (int64_t i = 0; i < per; ++i) {
          for (int k = 0; k < kStreams; ++k) s[k] += p[k * per + i];
        }
        uint64_t total = 0;
        for (uint64_t v : s) total += v;
        sums[size_t(tid)] = total;
      });
    });
    uint64_t check = 0;
    for (uint64_t s : sums) check += s;
    std::printf("stream read            threads=%d  %7.2f GB/s  (sum %llu)\n", threads,
                double(n) * 8 / t / 1e9, static_cast<unsigned long long>(check));
  }
}

void bench_matmul(TensorType type, int64_t rows, int64_t cols,
                  const std::vector<int>& thread_counts, const std::vector<int64_t>& token_counts) {
  const std::vector<uint8_t> data = make_matrix(type, rows, cols);
  const kernels::Matrix w{type, data.data(), rows, cols, type_row_bytes(type, cols)};
  const int64_t max_tokens = *std::max_element(token_counts.begin(), token_counts.end());
  std::vector<float> x(size_t(max_tokens * cols));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i % 17) - 8) * 0.05f;
  std::vector<float> y(size_t(max_tokens * rows));
  const double gbytes = double(data.size()) / 1e9;
  for (int threads : thread_counts) {
    ThreadPool pool(threads);
    for (int64_t tokens : token_counts) {
      const double work = double(rows) * double(cols) * double(tokens);
      const int reps = std::clamp(int(2e9 / (work + 1e6)), 3, 200);
      const double t = time_median(
          reps, [&] { kernels::matmul(w, x.data(), cols, tokens, y.data(), rows, pool); });
      std::printf(
          "%-5s %6ldx%-5ld tokens=%-4ld threads=%d  %8.2f ms  %7.2f GB/s  %7.1f GFLOP/s"
          "   (cpu %8.2f ms/run, %6.1f GFLOP per cpu-s)\n",
          tensor_type_name(type).c_str(), long(rows), long(cols), long(tokens), threads, t * 1e3,
          gbytes / t, 2.0 * work / t / 1e9, g_last_cpu_seconds * 1e3,
          2.0 * work / g_last_cpu_seconds / 1e9);
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, no_stream = false, stream_only = false, lm_head = true;
  int64_t rows = 15360;
  std::vector<int> threads = {1, 2};
  std::vector<TensorType> types;
  std::vector<int64_t> tokens;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--no-stream") == 0) no_stream = true;
    if (std::strcmp(argv[i], "--stream-only") == 0) stream_only = true;
    if (std::strcmp(argv[i], "--rows") == 0 && i + 1 < argc) rows = std::stol(argv[++i]);
    if (std::strcmp(argv[i], "--no-lm-head") == 0) lm_head = false;
    if (std::strcmp(argv[i], "--type") == 0 && i + 1 < argc) {
      TensorType t;
      if (parse_tensor_type(argv[++i], &t)) types.push_back(t);
    }
    if (std::strcmp(argv[i], "--tokens") == 0 && i + 1 < argc)
      tokens.push_back(std::stol(argv[++i]));
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      threads.clear();
      std::string s = argv[++i];
      size_t pos = 0;
      while (pos < s.size()) {
        threads.push_back(std::stoi(s.substr(pos)));
        pos = s.find(',', pos);
        if (pos == std::string::npos) break;
        ++pos;
      }
    }
  }
  std::printf("SIMD target: %s\n", kernels::active_target());
  if (types.empty()) {
    types = {TensorType::Q4_0, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q6_K,
             TensorType::Q5_K, TensorType::BF16, TensorType::F16,  TensorType::F32};
  }
  if (tokens.empty()) {
    tokens = quick ? std::vector<int64_t>{1, 64} : std::vector<int64_t>{1, 4, 16, 64, 256};
  }
  if (!no_stream) bench_stream(threads);
  if (stream_only) return 0;
  for (TensorType type : types) bench_matmul(type, rows, 3840, threads, tokens);
  if (lm_head) bench_matmul(TensorType::Q6_K, 262144, 3840, threads, {1});
  return 0;
}
