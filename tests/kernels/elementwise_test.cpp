// Elementwise kernels on every SIMD target against double-precision references.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"
#include "test_util.h"

namespace ug::kernels {
namespace {

using test::for_each_target;
using test::random_floats;

const std::vector<int64_t> kSizes = {1, 3, 16, 17, 100, 1000, 4099};

double gelu_tanh_formula(double g) {  // the definition; loses accuracy for g << 0 in double
  const double c = std::sqrt(2.0 / M_PI);
  return 0.5 * g * (1.0 + std::tanh(c * (g + 0.044715 * g * g * g)));
}
double gelu_tanh_exact(double g) {  // same function as g * sigmoid(2u), accurate everywhere
  const double c = std::sqrt(2.0 / M_PI);
  return g / (1.0 + std::exp(-2.0 * c * (g + 0.044715 * g * g * g)));
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rel,
                  double abs, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], rel * std::fabs(want[i]) + abs) << what << " i=" << i;
  }
}

TEST(Elementwise, RmsNorm) {
  std::mt19937 rng(5);
  for_each_target([&](const std::string&) {
    for (int64_t n : kSizes) {
      const std::vector<float> x = random_floats(n, rng, -3.0f, 3.0f);
      const std::vector<float> w = random_floats(n, rng, 0.5f, 1.5f);
      double ss = 0.0;
      for (float v : x) ss += double(v) * v;
      const double inv = 1.0 / std::sqrt(ss / double(n) + 1e-6);
      std::vector<double> want(static_cast<size_t>(n)), want_nw(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        want[size_t(i)] = x[size_t(i)] * inv * w[size_t(i)];
        want_nw[size_t(i)] = x[size_t(i)] * inv;
      }
      std::vector<float> y(static_cast<size_t>(n));
      rms_norm(x.data(), w.data(), y.data(), n, 1e-6f);
      expect_close(y, want, 2e-6, 1e-7, "rms_norm");
      rms_norm(x.data(), nullptr, y.data(), n, 1e-6f);
      expect_close(y, want_nw, 2e-6, 1e-7, "rms_norm no weight");
      std::vector<float> inplace = x;
      rms_norm(inplace.data(), w.data(), inplace.data(), n, 1e-6f);
      expect_close(inplace, want, 2e-6, 1e-7, "rms_norm in place");
    }
  });
}

TEST(Elementwise, GeluTanhMul) {
  std::mt19937 rng(6);
  for_each_target([&](const std::string&) {
    for (int64_t n : kSizes) {
      std::vector<float> gate = random_floats(n, rng, -12.0f, 12.0f);
      const float specials[] = {0.0f, -0.0f, 1e-20f, -1e-20f, 60.0f, -60.0f, 3.0f, -3.0f, -9.5f};
      for (size_t i = 0; i < std::size(specials) && i < gate.size(); ++i) gate[i] = specials[i];
      const std::vector<float> up = random_floats(n, rng, -2.0f, 2.0f);
      std::vector<double> want(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        want[size_t(i)] = gelu_tanh_exact(gate[size_t(i)]) * up[size_t(i)];
      // For very negative gates the result is ~1e-20 or smaller and exp's argument error is
      // amplified; an absolute floor far below anything that matters downstream covers those.
      std::vector<float> out(static_cast<size_t>(n));
      gelu_tanh_mul(gate.data(), up.data(), out.data(), n);
      expect_close(out, want, 1e-5, 1e-12, "gelu_tanh_mul");
      gelu_tanh_mul(gate.data(), up.data(), gate.data(), n);  // out aliases gate
      expect_close(gate, want, 1e-5, 1e-12, "gelu_tanh_mul in place");
    }
  });
}

TEST(Elementwise, ScaleAddAxpyDot) {
  std::mt19937 rng(8);
  for_each_target([&](const std::string&) {
    for (int64_t n : kSizes) {
      const std::vector<float> a = random_floats(n, rng);
      const std::vector<float> b = random_floats(n, rng);
      std::vector<float> x = a;
      scale(x.data(), 1.5f, n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(x[size_t(i)], a[size_t(i)] * 1.5f);
      std::vector<float> y = b;
      add(a.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(y[size_t(i)], b[size_t(i)] + a[size_t(i)]);
      y = b;
      axpy(-0.75f, a.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        const double want = double(b[size_t(i)]) - 0.75 * a[size_t(i)];
        ASSERT_NEAR(y[size_t(i)], want,
                    1.2e-7 * (std::fabs(b[size_t(i)]) + std::fabs(a[size_t(i)])));
      }
      double want = 0.0, abs_sum = 0.0;
      for (int64_t i = 0; i < n; ++i) {
        want += double(a[size_t(i)]) * b[size_t(i)];
        abs_sum += std::fabs(double(a[size_t(i)]) * b[size_t(i)]);
      }
      EXPECT_NEAR(dot(a.data(), b.data(), n), want, 1e-6 * abs_sum);
      EXPECT_NEAR(ref::dot(a.data(), b.data(), n), want, 1e-7 * abs_sum);
    }
  });
}

TEST(Elementwise, Softcap) {
  std::mt19937 rng(9);
  for_each_target([&](const std::string&) {
    for (int64_t n : kSizes) {
      std::vector<float> x = random_floats(n, rng, -200.0f, 200.0f);
      if (n > 2) x[1] = 0.0f, x[2] = 1e-3f;
      std::vector<double> want(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) want[size_t(i)] = 30.0 * std::tanh(x[size_t(i)] / 30.0);
      softcap(x.data(), 30.0f, n);
      expect_close(x, want, 2e-6, 1e-30, "softcap");
    }
  });
}

TEST(Elementwise, Softmax) {
  std::mt19937 rng(10);
  const float kNegInf = -std::numeric_limits<float>::infinity();
  for_each_target([&](const std::string&) {
    for (int64_t n : kSizes) {
      std::vector<float> x = random_floats(n, rng, -20.0f, 20.0f);
      for (int64_t i = 1; i < n; i += 3) x[size_t(i)] = kNegInf;  // masked entries
      double max = -1e300;
      for (float v : x) max = std::max<double>(max, v);
      std::vector<double> want(static_cast<size_t>(n));
      double sum = 0.0;
      for (int64_t i = 0; i < n; ++i) sum += want[size_t(i)] = std::exp(double(x[size_t(i)]) - max);
      for (auto& v : want) v /= sum;
      softmax(x.data(), n);
      expect_close(x, want, 1e-5, 1e-30, "softmax");
      for (int64_t i = 1; i < n; i += 3) ASSERT_EQ(x[size_t(i)], 0.0f);
    }
    std::vector<float> masked(19, kNegInf);
    softmax(masked.data(), 19);
    for (float v : masked) EXPECT_EQ(v, 0.0f);
    float one = -5.0f;
    softmax(&one, 1);
    EXPECT_EQ(one, 1.0f);
  });
}

TEST(Elementwise, ReferenceAgreesWithFormulas) {
  // The double-accumulating references used by other tests match the definitions.
  std::mt19937 rng(12);
  const std::vector<float> g = random_floats(64, rng, -6.0f, 6.0f);
  const std::vector<float> u = random_floats(64, rng);
  std::vector<float> out(64);
  ref::gelu_tanh_mul(g.data(), u.data(), out.data(), 64);
  for (size_t i = 0; i < 64; ++i) {
    EXPECT_NEAR(gelu_tanh_exact(g[i]), gelu_tanh_formula(g[i]), 1e-14);
    EXPECT_NEAR(out[i], gelu_tanh_formula(g[i]) * u[i], 1e-6);
  }
  std::vector<float> s = {1.0f, 2.0f, 3.0f, -std::numeric_limits<float>::infinity()};
  ref::softmax(s.data(), 4);
  EXPECT_NEAR(s[2], std::exp(1.0) / (std::exp(-1.0) + 1.0 + std::exp(1.0)), 1e-7);
  EXPECT_EQ(s[3], 0.0f);
}

}  // namespace
}  // namespace ug::kernels
