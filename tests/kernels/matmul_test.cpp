// dot_row / axpy_row / matmul on every weight type and SIMD target against the scalar reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"
#include "kernels/thread_pool.h"
#include "test_util.h"
#include "util/error.h"

namespace ug::kernels {
namespace {

using test::all_weight_types;
using test::for_each_target;
using test::random_floats;
using test::random_row;

// Relative tolerance on a dot product, scaled by sum |w_i x_i| (cancellation-proof).
constexpr double kDotTolerance = 1e-5;

std::vector<uint8_t> random_matrix(TensorType type, int64_t rows, int64_t cols, int64_t row_bytes,
                                   std::mt19937& rng) {
  std::vector<uint8_t> m(static_cast<size_t>(rows * row_bytes), 0xEE);  // padding bytes stay junk
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<uint8_t> row = random_row(type, cols, rng);
    std::copy(row.begin(), row.end(), m.begin() + r * row_bytes);
  }
  return m;
}

TEST(Targets, ListAndForce) {
  force_targets(0);
  const int64_t targets = available_targets();
  ASSERT_NE(targets, 0);
  EXPECT_STREQ(active_target(), target_name(targets & -targets));  // best = lowest bit
  const auto ran = for_each_target([](const std::string&) {});
  std::string names;
  for (const auto& r : ran) names += r + " ";
  std::printf("[ targets  ] available: %s(default %s)\n", names.c_str(), active_target());
  EXPECT_EQ(ran.size(), size_t(__builtin_popcountll(uint64_t(targets))));
}

TEST(DotRow, MatchesReferenceOnAllTargets) {
  std::mt19937 rng(99);
  for (TensorType type : all_weight_types()) {
    SCOPED_TRACE(tensor_type_name(type));
    const int64_t be = type_block_elems(type);
    std::vector<int64_t> sizes = {be, 3 * be, 256 * 5};
    if (be == 1) sizes.insert(sizes.end(), {5, 16, 33, 4099});
    for (int64_t n : sizes) {
      const std::vector<uint8_t> row = random_row(type, n, rng);
      const std::vector<float> x = random_floats(n, rng);
      std::vector<float> w(static_cast<size_t>(n));
      ref::dequantize_row(type, row.data(), w.data(), n);
      double abs_sum = 0.0;
      for (int64_t i = 0; i < n; ++i) abs_sum += std::fabs(double(w[size_t(i)]) * x[size_t(i)]);
      const float want = ref::dot_row(type, row.data(), x.data(), n);
      const float a = 0.37f;
      const std::vector<float> y0 = random_floats(n, rng);
      std::vector<float> want_axpy = y0;
      ref::axpy_row(type, row.data(), a, want_axpy.data(), n);
      for_each_target([&](const std::string&) {
        const float got = dot_row(type, row.data(), x.data(), n);
        EXPECT_NEAR(got, want, kDotTolerance * abs_sum + 1e-30) << "n=" << n;
        std::vector<float> y = y0;
        axpy_row(type, row.data(), a, y.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          const double scale = std::fabs(y0[size_t(i)]) + std::fabs(a * w[size_t(i)]);
          ASSERT_NEAR(y[size_t(i)], want_axpy[size_t(i)], 1e-6 * scale + 1e-30)
              << "n=" << n << " i=" << i;
        }
      });
    }
  }
}

struct Shape {
  int64_t rows, cols;
};

std::vector<Shape> shapes_for(TensorType type) {
  switch (type_block_elems(type)) {
    case 1:
      return {{1, 48}, {37, 300}, {67, 515}};
    case 32:
      return {{1, 64}, {37, 320}, {67, 544}};
    default:
      return {{1, 256}, {37, 512}, {67, 768}};
  }
}

// Runs matmul with strided x/y (ld > width) and checks every output against the reference and
// that the padding between rows of y is untouched.
void check_matmul(TensorType type, const Shape& s, int64_t n_tokens, std::mt19937& rng,
                  const std::vector<ThreadPool*>& pools, int64_t row_pad = 0) {
  const int64_t row_bytes = type_row_bytes(type, s.cols) + row_pad;
  const std::vector<uint8_t> data = random_matrix(type, s.rows, s.cols, row_bytes, rng);
  const Matrix w{type, data.data(), s.rows, s.cols, row_bytes};
  const int64_t ldx = n_tokens > 1 ? s.cols + 3 : s.cols;
  const int64_t ldy = n_tokens > 1 ? s.rows + 5 : s.rows;
  std::vector<float> x = random_floats(n_tokens * ldx, rng);
  std::vector<float> want(static_cast<size_t>(n_tokens * ldy), 0.0f);
  // Decode-size products on these types round the activations to int16 blocks (gemv_i16_test.cpp
  // covers that path in depth): compare with the reference of that arithmetic, on the rounded x.
  const bool int_activations =
      n_tokens <= 8 && !exact_matmul() &&
      (type == TensorType::Q8_0 || type == TensorType::Q4_0 || type == TensorType::Q4_K ||
       type == TensorType::Q5_K || type == TensorType::Q6_K);
  if (int_activations) {
    ref::matmul_quantized_activations(w, x.data(), ldx, n_tokens, want.data(), ldy);
  } else {
    ref::matmul(w, x.data(), ldx, n_tokens, want.data(), ldy);
  }
  std::vector<float> x_used = x;
  if (int_activations) {
    std::vector<int16_t> q(static_cast<size_t>(s.cols));
    std::vector<float> d(static_cast<size_t>(s.cols / 32));
    for (int64_t t = 0; t < n_tokens; ++t) {
      ref::quantize_activations(x.data() + t * ldx, s.cols, q.data(), d.data());
      for (int64_t c = 0; c < s.cols; ++c) {
        x_used[size_t(t * ldx + c)] = d[size_t(c / 32)] * q[size_t(c)];
      }
    }
  }
  // sum_c |w[r,c] x[t,c]| for the tolerance.
  std::vector<double> abs_sum(static_cast<size_t>(n_tokens * s.rows), 0.0);
  std::vector<float> wrow(static_cast<size_t>(s.cols));
  for (int64_t r = 0; r < s.rows; ++r) {
    ref::dequantize_row(type, data.data() + r * row_bytes, wrow.data(), s.cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double sum = 0.0;
      for (int64_t c = 0; c < s.cols; ++c)
        sum += std::fabs(double(wrow[size_t(c)]) * x_used[size_t(t * ldx + c)]);
      abs_sum[size_t(t * s.rows + r)] = sum;
    }
  }
  const float kSentinel = -777.0f;
  for (ThreadPool* pool : pools) {
    SCOPED_TRACE("rows=" + std::to_string(s.rows) + " cols=" + std::to_string(s.cols) + " tokens=" +
                 std::to_string(n_tokens) + " threads=" + std::to_string(pool->size()));
    std::vector<float> y(static_cast<size_t>(n_tokens * ldy), kSentinel);
    matmul(w, x.data(), ldx, n_tokens, y.data(), ldy, *pool);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = 0; r < s.rows; ++r) {
        const size_t i = size_t(t * ldy + r);
        ASSERT_NEAR(y[i], want[i], kDotTolerance * abs_sum[size_t(t * s.rows + r)] + 1e-30)
            << "t=" << t << " r=" << r;
      }
      for (int64_t r = s.rows; r < ldy; ++r) ASSERT_EQ(y[size_t(t * ldy + r)], kSentinel);
    }
  }
}

TEST(Matmul, MatchesReferenceOnAllTargets) {
  std::mt19937 rng(2024);
  ThreadPool one(1), two(2);
  const std::vector<ThreadPool*> pools = {&one, &two};
  for_each_target([&](const std::string&) {
    for (TensorType type : all_weight_types()) {
      SCOPED_TRACE(tensor_type_name(type));
      for (const Shape& s : shapes_for(type)) {
        for (int64_t n_tokens : {1, 2, 3, 8, 9, 17, 64}) {
          check_matmul(type, s, n_tokens, rng, pools);
        }
      }
    }
  });
}

TEST(Matmul, PaddedRowsAndLargeBatches) {
  std::mt19937 rng(77);
  ThreadPool two(2);
  // Row stride larger than the row (a view into a bigger tensor), several row blocks and two
  // token passes of the prefill kernel.
  check_matmul(TensorType::Q4_0, {300, 256}, 600, rng, {&two}, /*row_pad=*/14);
  check_matmul(TensorType::Q6_K, {70, 512}, 5, rng, {&two}, /*row_pad=*/2);
  check_matmul(TensorType::F32, {33, 1000}, 40, rng, {&two});
}

TEST(Matmul, EdgeCasesAndErrors) {
  ThreadPool pool(2);
  float x[64] = {1.0f};
  float y[8] = {5.0f, 5.0f};
  std::vector<uint8_t> q(1000);
  // Zero tokens / zero rows do nothing; zero columns give zeros.
  matmul(Matrix{TensorType::Q8_0, q.data(), 2, 64, 68}, x, 64, 0, y, 2, pool);
  EXPECT_EQ(y[0], 5.0f);
  matmul(Matrix{TensorType::F32, q.data(), 2, 0, 0}, x, 0, 1, y, 2, pool);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_THROW(matmul(Matrix{TensorType::Q8_0, q.data(), 2, 48, 68}, x, 48, 1, y, 2, pool), Error);
  EXPECT_THROW(matmul(Matrix{TensorType::Q4_1, q.data(), 2, 64, 40}, x, 64, 1, y, 2, pool), Error);
  EXPECT_THROW(matmul(Matrix{TensorType::Q8_0, q.data(), 2, 64, 60}, x, 64, 1, y, 2, pool), Error);
  EXPECT_THROW(matmul(Matrix{TensorType::Q8_0, nullptr, 2, 64, 68}, x, 64, 1, y, 2, pool), Error);
  EXPECT_THROW(matmul(Matrix{TensorType::F32, q.data(), 2, 8, 32}, x, 4, 2, y, 2, pool), Error);
}

}  // namespace
}  // namespace ug::kernels
