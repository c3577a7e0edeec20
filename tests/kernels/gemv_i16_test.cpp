// The integer decode kernels (matmul with 1..8 tokens and matmul_rowwise on Q8_0, Q4_0, Q4_K,
// Q5_K, Q6_K weights, int16 activations) on every SIMD target: against the scalar reference of the
// same arithmetic (ref::matmul_quantized_activations), against the exact fp32 product within the
// bound the activation rounding allows, batch-size independence, the exact switch and non-finite
// input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"
#include "kernels/thread_pool.h"
#include "test_util.h"

namespace ug::kernels {
namespace {

const std::vector<TensorType>& int_types() {
  static const std::vector<TensorType> types = {
      TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};
  return types;
}

struct Case {
  TensorType type;
  int64_t rows, cols, row_bytes;
  std::vector<uint8_t> data;
  Matrix w() const { return Matrix{type, data.data(), rows, cols, row_bytes}; }
};

Case random_case(TensorType type, int64_t rows, int64_t cols, int64_t row_pad, std::mt19937& rng) {
  Case c{type, rows, cols, type_row_bytes(type, cols) + row_pad, {}};
  c.data.assign(size_t(rows * c.row_bytes), 0xEE);
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<uint8_t> row = test::random_row(type, cols, rng);
    std::memcpy(c.data.data() + r * c.row_bytes, row.data(), row.size());
  }
  return c;
}

// sum_c |W[r,c] * xq[t,c]| (tolerance scale) and sum_b d_b / 2 * sum_{c in b} |W[r,c]| (how far
// the activation rounding can move the result from the exact product), [t * rows + r].
void bounds(const Case& c, const std::vector<float>& x, int64_t ldx, int64_t n_tokens,
            std::vector<double>* abs_sum, std::vector<double>* rounding) {
  abs_sum->assign(size_t(n_tokens * c.rows), 0.0);
  rounding->assign(size_t(n_tokens * c.rows), 0.0);
  std::vector<float> w(size_t(c.cols)), d(size_t(c.cols / 32));
  std::vector<int16_t> q(size_t(c.cols));
  for (int64_t t = 0; t < n_tokens; ++t) {
    ref::quantize_activations(x.data() + t * ldx, c.cols, q.data(), d.data());
    for (int64_t r = 0; r < c.rows; ++r) {
      ref::dequantize_row(c.type, c.data.data() + r * c.row_bytes, w.data(), c.cols);
      double s = 0.0, e = 0.0;
      for (int64_t i = 0; i < c.cols; ++i) {
        const double wi = std::fabs(double(w[size_t(i)]));
        s += wi * std::fabs(double(d[size_t(i / 32)]) * q[size_t(i)]);
        e += wi * double(d[size_t(i / 32)]) * 0.5;
      }
      (*abs_sum)[size_t(t * c.rows + r)] = s;
      (*rounding)[size_t(t * c.rows + r)] = e;
    }
  }
}

std::vector<Case> cases_for(TensorType type, std::mt19937& rng) {
  std::vector<Case> cases;
  if (type_block_elems(type) == 32) {
    cases.push_back(random_case(type, 1, 32, 0, rng));
    cases.push_back(random_case(type, 7, 96, 0, rng));
    cases.push_back(random_case(type, 37, 544, 6, rng));  // padded rows (a view)
  } else {
    cases.push_back(random_case(type, 1, 256, 0, rng));
    cases.push_back(random_case(type, 5, 768, 0, rng));
    cases.push_back(random_case(type, 37, 512, 2, rng));
  }
  return cases;
}

TEST(GemvI16, MatchesTheReferenceOnEveryTargetFor1To8Tokens) {
  std::mt19937 rng(4711);
  ThreadPool one(1), two(2);
  set_exact_matmul(false);
  for (TensorType type : int_types()) {
    SCOPED_TRACE(tensor_type_name(type));
    for (const Case& c : cases_for(type, rng)) {
      for (int64_t n = 1; n <= 8; ++n) {
        const int64_t ldx = c.cols + 5, ldy = c.rows + 3;
        const std::vector<float> x = test::random_floats(n * ldx, rng);
        std::vector<float> want(size_t(n * ldy));
        ref::matmul_quantized_activations(c.w(), x.data(), ldx, n, want.data(), ldy);
        std::vector<float> exact(size_t(n * ldy));
        ref::matmul(c.w(), x.data(), ldx, n, exact.data(), ldy);
        std::vector<double> abs_sum, rounding;
        bounds(c, x, ldx, n, &abs_sum, &rounding);
        test::for_each_target([&](const std::string&) {
          for (ThreadPool* pool : {&one, &two}) {
            SCOPED_TRACE("rows=" + std::to_string(c.rows) + " cols=" + std::to_string(c.cols) +
                         " tokens=" + std::to_string(n) +
                         " threads=" + std::to_string(pool->size()));
            std::vector<float> y(size_t(n * ldy), -777.0f);
            matmul(c.w(), x.data(), ldx, n, y.data(), ldy, *pool);
            for (int64_t t = 0; t < n; ++t) {
              for (int64_t r = 0; r < c.rows; ++r) {
                const size_t i = size_t(t * ldy + r);
                const double scale = abs_sum[size_t(t * c.rows + r)];
                ASSERT_NEAR(y[i], want[i], 1e-5 * scale + 1e-30) << "t=" << t << " r=" << r;
                ASSERT_NEAR(y[i], exact[i], rounding[size_t(t * c.rows + r)] + 1e-5 * scale)
                    << "t=" << t << " r=" << r;
              }
              for (int64_t r = c.rows; r < ldy; ++r) ASSERT_EQ(y[size_t(t * ldy + r)], -777.0f);
            }
          }
        });
      }
    }
  }
}

// Verifying k drafted tokens must give each token exactly what decoding it alone gives.
TEST(GemvI16, EachTokenOfABatchEqualsItsSingleTokenProduct) {
  std::mt19937 rng(5);
  ThreadPool two(2);
  test::for_each_target([&](const std::string&) {
    for (TensorType type : int_types()) {
      SCOPED_TRACE(tensor_type_name(type));
      const Case c = random_case(type, 67, 512, 0, rng);
      for (int64_t n = 2; n <= 8; ++n) {
        const std::vector<float> x = test::random_floats(n * c.cols, rng);
        std::vector<float> batch(size_t(n * c.rows));
        matmul(c.w(), x.data(), c.cols, n, batch.data(), c.rows, two);
        for (int64_t t = 0; t < n; ++t) {
          std::vector<float> alone(size_t(c.rows));
          matmul(c.w(), x.data() + t * c.cols, c.cols, 1, alone.data(), c.rows, two);
          ASSERT_EQ(0, std::memcmp(alone.data(), batch.data() + t * c.rows,
                                   size_t(c.rows) * sizeof(float)))
              << "n=" << n << " t=" << t;
        }
      }
    }
  });
}

TEST(GemvI16, ExactSwitchKeepsFp32Activations) {
  std::mt19937 rng(8);
  ThreadPool two(2);
  const Case c = random_case(TensorType::Q4_0, 37, 544, 0, rng);
  const std::vector<float> x = test::random_floats(3 * c.cols, rng);
  std::vector<float> exact(size_t(3 * c.rows)), y(size_t(3 * c.rows));
  ref::matmul(c.w(), x.data(), c.cols, 3, exact.data(), c.rows);
  set_exact_matmul(true);
  EXPECT_TRUE(exact_matmul());
  matmul(c.w(), x.data(), c.cols, 3, y.data(), c.rows, two);
  set_exact_matmul(false);
  double worst = 0.0;
  for (size_t i = 0; i < y.size(); ++i) worst = std::max(worst, std::fabs(double(y[i]) - exact[i]));
  EXPECT_LT(worst, 1e-5);
  // The default path rounds the activations to int16: different, but only just.
  matmul(c.w(), x.data(), c.cols, 3, y.data(), c.rows, two);
  double diff = 0.0;
  for (size_t i = 0; i < y.size(); ++i) diff = std::max(diff, std::fabs(double(y[i]) - exact[i]));
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(diff, 1e-4);
}

TEST(GemvI16, NonFiniteActivationsGiveNaNOnlyForTheirTokenTinyOnesZero) {
  std::mt19937 rng(9);
  ThreadPool two(2);
  test::for_each_target([&](const std::string&) {
    for (TensorType type : int_types()) {
      SCOPED_TRACE(tensor_type_name(type));
      const Case c = random_case(type, 9, 256, 0, rng);
      std::vector<float> x = test::random_floats(3 * c.cols, rng);
      x[size_t(c.cols + 40)] = std::numeric_limits<float>::infinity();
      std::fill(x.begin() + 2 * c.cols, x.end(), 0.0f);  // token 2: all zeros but one tiny value
      x[size_t(2 * c.cols + 7)] = 1e-36f;                // 1 / (max / 32767) would overflow
      std::vector<float> y(size_t(3 * c.rows));
      matmul(c.w(), x.data(), c.cols, 3, y.data(), c.rows, two);
      for (int64_t r = 0; r < c.rows; ++r) {
        EXPECT_TRUE(std::isfinite(y[size_t(r)])) << r;
        EXPECT_TRUE(std::isnan(y[size_t(c.rows + r)])) << r;
        EXPECT_EQ(y[size_t(2 * c.rows + r)], 0.0f) << r;
      }
    }
  });
}

}  // namespace
}  // namespace ug::kernels
