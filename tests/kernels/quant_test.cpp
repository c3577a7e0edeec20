// Conversions, quantizers and dequantization: exactness against hand-computed values and
// bit-identity of every SIMD target with the scalar reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"
#include "test_util.h"
#include "util/error.h"

namespace ug::kernels {
namespace {

using test::all_weight_types;
using test::for_each_target;
using test::random_row;
using test::same_float;

float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

TEST(Fp16, KnownValues) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  EXPECT_EQ(float_bits(fp16_to_fp32(0x8000)), 0x80000000u);

  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7BFF);  // below the midpoint to inf
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);    // tie rounds to even = inf
  EXPECT_EQ(fp32_to_fp16(1e9f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie -> even
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie -> even (up)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);     // tie -> even (0)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);     // tie -> even (2)
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14)), 0x0400);     // smallest normal
  EXPECT_EQ(fp32_to_fp16(std::ldexp(2047.0f, -25)), 0x0400);  // rounds up into the normals
  const uint16_t nan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x3FF, 0);
  EXPECT_NE(fp32_to_fp16(bits_to_float(0x7F800001u)) & 0x3FF, 0);  // signalling NaN stays NaN
}

TEST(Fp16, RoundTripAndNearest) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(uint16_t(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f))));
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), h) << "h=" << h;
  }
  // Random floats in the half range: the result is a nearest half, ties to even.
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> exponent(-26.0f, 16.0f);
  for (int i = 0; i < 200000; ++i) {
    const float f = std::exp2(exponent(rng)) * ((i & 1) ? -1.0f : 1.0f);
    if (std::fabs(f) >= 65504.0f) continue;
    const uint16_t h = fp32_to_fp16(f);
    const double got = fp16_to_fp32(h);
    const double lo = fp16_to_fp32(uint16_t(h - ((h & 0x7FFF) ? 1 : 0)));
    const double hi = fp16_to_fp32(uint16_t(h + 1));
    ASSERT_LE(std::fabs(got - f), std::fabs(lo - f)) << f;
    ASSERT_LE(std::fabs(got - f), std::fabs(hi - f)) << f;
  }
}

TEST(Bf16, KnownValues) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F808000u)), 0x3F80);  // tie -> even (down)
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F818000u)), 0x3F82);  // tie -> even (up)
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x3F808001u)), 0x3F81);
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x7F7FFFFFu)), 0x7F80);  // overflow to inf like ggml
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x00018000u)), 0x0002);  // subnormals are rounded
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0x7F800001u)), 0x7FC0);  // NaN forced quiet
  EXPECT_EQ(fp32_to_bf16(bits_to_float(0xFFC00001u)), 0xFFC0);
  EXPECT_EQ(bf16_to_fp32(0xC040), -3.0f);
}

TEST(Quantize, FloatTypes) {
  const float src[4] = {1.0f, -2.5f, 65520.0f, bits_to_float(0x3F818000u)};
  uint16_t f16[4], bf16[4];
  quantize_row(TensorType::F16, src, f16, 4);
  EXPECT_EQ(f16[0], 0x3C00);
  EXPECT_EQ(f16[1], 0xC100);
  EXPECT_EQ(f16[2], 0x7C00);
  quantize_row(TensorType::BF16, src, bf16, 4);
  EXPECT_EQ(bf16[0], 0x3F80);
  EXPECT_EQ(bf16[1], 0xC020);
  EXPECT_EQ(bf16[3], 0x3F82);
  float f32[4];
  quantize_row(TensorType::F32, src, f32, 4);
  EXPECT_EQ(std::memcmp(f32, src, sizeof(src)), 0);
}

TEST(Quantize, Q8_0HandComputedBlock) {
  // amax = 127 makes d = 1 exactly, so each quant is roundf(x): halves round away from zero.
  float x[32] = {127.0f, -127.0f, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 0.49f, 3.7f, -3.7f, 0.0f};
  for (int i = 11; i < 32; ++i) x[i] = float(i) - 20.0f;
  blocks::BlockQ8_0 b;
  quantize_row(TensorType::Q8_0, x, &b, 32);
  EXPECT_EQ(b.d, 0x3C00);
  const int expected[11] = {127, -127, 1, -1, 2, 3, -3, 0, 4, -4, 0};
  for (int i = 0; i < 11; ++i) EXPECT_EQ(b.qs[i], expected[i]) << i;
  for (int i = 11; i < 32; ++i) EXPECT_EQ(b.qs[i], i - 20) << i;

  // All zeros: d = 0 and every quant 0.
  float zeros[32] = {};
  quantize_row(TensorType::Q8_0, zeros, &b, 32);
  EXPECT_EQ(b.d, 0);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(b.qs[i], 0);
}

TEST(Quantize, Q4_0HandComputedBlock) {
  // The value of largest magnitude is -8, so d = -8 / -8 = 1 and quant = min(15, trunc(x + 8.5)).
  float x[32] = {-8.0f, 7.0f, 7.9f, 0.0f, 0.5f, 0.49f, -0.5f, -0.51f, 3.2f, -3.2f};
  const int expected_lo[10] = {0, 15, 15, 8, 9, 8, 8, 7, 11, 5};
  for (int i = 10; i < 32; ++i) x[i] = float((i % 15) - 7);
  blocks::BlockQ4_0 b;
  quantize_row(TensorType::Q4_0, x, &b, 32);
  EXPECT_EQ(b.d, 0x3C00);
  auto quant = [&](int i) { return i < 16 ? (b.qs[i] & 0xF) : (b.qs[i - 16] >> 4); };
  for (int i = 0; i < 10; ++i) EXPECT_EQ(quant(i), expected_lo[i]) << i;
  for (int i = 10; i < 32; ++i) EXPECT_EQ(quant(i), (i % 15) - 7 + 8) << i;

  // Largest magnitude positive: d = -1, the scale flips the sign.
  float y[32] = {8.0f, -8.0f, 1.0f};
  quantize_row(TensorType::Q4_0, y, &b, 32);
  EXPECT_EQ(b.d, 0xBC00);
  EXPECT_EQ(quant(0), 0);   // trunc(-8 + 8.5)
  EXPECT_EQ(quant(1), 15);  // trunc(16.5) = 16, clamped
  EXPECT_EQ(quant(2), 7);   // trunc(7.5)
  EXPECT_EQ(quant(3), 8);
  float back[32];
  dequantize_row(TensorType::Q4_0, &b, back, 32);
  EXPECT_EQ(back[0], 8.0f);
  EXPECT_EQ(back[1], -7.0f);
  EXPECT_EQ(back[2], 1.0f);

  float zeros[32] = {};
  quantize_row(TensorType::Q4_0, zeros, &b, 32);
  EXPECT_EQ(b.d, 0x8000);  // d = 0 / -8 = -0
  for (int i = 0; i < 16; ++i) EXPECT_EQ(b.qs[i], 0x88);
}

TEST(Quantize, RoundTripErrorBounds) {
  std::mt19937 rng(11);
  const int64_t n = 32 * 64;
  std::vector<float> x = test::random_floats(n, rng, -3.0f, 3.0f);
  std::vector<float> back(static_cast<size_t>(n));
  for (TensorType type : {TensorType::Q8_0, TensorType::Q4_0}) {
    std::vector<uint8_t> q(static_cast<size_t>(type_row_bytes(type, n)));
    quantize_row(type, x.data(), q.data(), n);
    dequantize_row(type, q.data(), back.data(), n);
    // Q8_0 rounds to nearest (half a step); Q4_0 clamps +amax to 7 steps (a full step off).
    const float step_frac = type == TensorType::Q8_0 ? 0.5f / 127.0f : 1.0f / 8.0f;
    for (int64_t b = 0; b < n / 32; ++b) {
      float amax = 0.0f;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[size_t(b * 32 + j)]));
      for (int j = 0; j < 32; ++j) {
        const size_t i = size_t(b * 32 + j);
        // Half a step plus the fp16 rounding of the scale.
        EXPECT_LE(std::fabs(back[i] - x[i]), amax * step_frac * 1.01f + amax * 1e-3f)
            << tensor_type_name(type) << " i=" << i;
      }
    }
    // Re-quantizing the dequantized row is a fixed point.
    std::vector<uint8_t> q2(q.size());
    quantize_row(type, back.data(), q2.data(), n);
    EXPECT_EQ(q, q2) << tensor_type_name(type);
  }
}

TEST(Quantize, RejectsBadArguments) {
  float x[64] = {};
  uint8_t out[256];
  EXPECT_THROW(quantize_row(TensorType::Q4_K, x, out, 64), Error);  // not a multiple of 256
  EXPECT_THROW(quantize_row(TensorType::Q8_0, x, out, 33), Error);
  EXPECT_THROW(quantize_row(TensorType::Q4_1, x, out, 32), Error);
  EXPECT_THROW(dequantize_row(TensorType::Q6_K, out, x, 64), Error);
  EXPECT_THROW(dequantize_row(TensorType::I8, out, x, 8), Error);
  EXPECT_THROW(dot_row(TensorType::Q4_0, out, x, 31), Error);
  EXPECT_THROW(axpy_row(TensorType::Q4_1, out, 1.0f, x, 32), Error);
}

// K-quant encoders: round trip within the format's resolution, zeros stay zeros, more bits less
// error.
TEST(Quantize, KQuantsRoundTrip) {
  std::vector<float> x(512);
  uint32_t state = 12345;
  for (auto& v : x) {
    state = state * 1664525u + 1013904223u;
    v = (float(state >> 8) / float(1u << 24) - 0.5f) * 2.0f;
  }
  double prev = 1e9;
  for (TensorType t : {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    std::vector<uint8_t> q(size_t(type_row_bytes(t, 512)));
    std::vector<float> y(512);
    quantize_row(t, x.data(), q.data(), 512);
    dequantize_row(t, q.data(), y.data(), 512);
    double err = 0, max_err = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      err += (x[i] - y[i]) * (x[i] - y[i]);
      max_err = std::max(max_err, double(std::fabs(x[i] - y[i])));
    }
    err /= double(x.size());
    EXPECT_LT(err, prev) << tensor_type_name(t);
    EXPECT_LT(max_err, t == TensorType::Q4_K ? 0.1 : 0.05) << tensor_type_name(t);
    prev = err;
    std::vector<float> zeros(256, 0.0f), back(256, 1.0f);
    quantize_row(t, zeros.data(), q.data(), 256);
    dequantize_row(t, q.data(), back.data(), 256);
    for (float v : back) EXPECT_EQ(v, 0.0f) << tensor_type_name(t);
  }
}

// Hand-decoded K-quant blocks pin down the bit layouts independently of the reference code.
TEST(Dequantize, Q4_KLayout) {
  blocks::BlockQ4_K b{};
  b.d = fp32_to_fp16(0.5f);
  b.dmin = fp32_to_fp16(0.25f);
  // Sub-block 1: scale 3, min 5 (j < 4 layout); sub-block 5: scale 0x2A, min 0x31 (j >= 4 layout:
  // low 4 bits in scales[9], high 2 bits in the top bits of scales[1] / scales[5]).
  b.scales[1] = 3 | (0x2A >> 4) << 6;
  b.scales[5] = 5 | (0x31 >> 4) << 6;
  b.scales[9] = (0x2A & 0xF) | (0x31 & 0xF) << 4;
  b.qs[0] = 0x9C;       // element 0: 0xC (sub-block 0), element 32: 0x9 (sub-block 1)
  b.qs[64 + 3] = 0x70;  // element 128+3: 0x0 (sub-block 4), element 160+3: 0x7 (sub-block 5)
  float y[256];
  for_each_target([&](const std::string&) {
    dequantize_row(TensorType::Q4_K, &b, y, 256);
    EXPECT_EQ(y[0], 0.0f);                       // scale 0, min 0
    EXPECT_EQ(y[32], 0.5f * 3 * 9 - 0.25f * 5);  // 12.25
    EXPECT_EQ(y[163], 0.5f * 0x2A * 7 - 0.25f * 0x31);
    EXPECT_EQ(y[33], -0.25f * 5);
  });
}

TEST(Dequantize, Q5_KLayout) {
  blocks::BlockQ5_K b{};
  b.d = fp32_to_fp16(1.0f);
  b.dmin = fp32_to_fp16(0.0f);
  for (int j = 0; j < 4; ++j) b.scales[j] = 1;  // sub-blocks 0..3: scale 1
  b.qs[0] = 0x21;                               // element 0: 1, element 32: 2
  b.qh[0] = 0x02;       // high bit of element 32 (bit 1 = second half of the first 64)
  b.qs[32 + 5] = 0x43;  // element 64+5: 3, element 96+5: 4
  b.qh[5] = 0x04;       // high bit of element 64+5 (bit 2)
  float y[256];
  for_each_target([&](const std::string&) {
    dequantize_row(TensorType::Q5_K, &b, y, 256);
    EXPECT_EQ(y[0], 1.0f);
    EXPECT_EQ(y[32], 18.0f);
    EXPECT_EQ(y[69], 19.0f);
    EXPECT_EQ(y[101], 4.0f);
  });
}

TEST(Dequantize, Q6_KLayout) {
  blocks::BlockQ6_K b{};
  b.d = fp32_to_fp16(0.5f);
  for (int j = 0; j < 16; ++j) b.scales[j] = int8_t(j - 8);
  // Element 0: low 4 bits ql[0] & 0xF, high 2 bits qh[0] & 3. Element 96+17: ql[32+17] >> 4,
  // (qh[17] >> 6) & 3, scale index 1 + 6 = 7. Element 128 + 64: second half, ql[64] >> 4,
  // (qh[32] >> 4) & 3, scale index 8 + 4.
  b.ql[0] = 0x05;
  b.qh[0] = 0x02;  // q = 5 | 2 << 4 = 37 -> 5
  b.ql[49] = 0xA0;
  b.qh[17] = 0xC0;  // q = 10 | 3 << 4 = 58 -> 26
  b.ql[64] = 0x30;
  b.qh[32] = 0x10;  // q = 3 | 1 << 4 = 19 -> -13
  float y[256];
  for_each_target([&](const std::string&) {
    dequantize_row(TensorType::Q6_K, &b, y, 256);
    EXPECT_EQ(y[0], 0.5f * -8 * 5);
    EXPECT_EQ(y[113], 0.5f * (7 - 8) * 26);
    EXPECT_EQ(y[192], 0.5f * (12 - 8) * -13);
    EXPECT_EQ(y[1], 0.5f * -8 * -32);
  });
}

// Every target's SIMD dequantization is bit-identical to the scalar reference, on plausible rows
// and on rows of random bytes (scales may be inf/NaN/subnormal).
TEST(Dequantize, BitExactOnAllTargets) {
  std::mt19937 rng(1234);
  std::vector<std::string> ran;
  for (TensorType type : all_weight_types()) {
    SCOPED_TRACE(tensor_type_name(type));
    const int64_t be = type_block_elems(type);
    std::vector<int64_t> sizes = {be, 4 * be, 3 * 256};
    if (be == 1) sizes.insert(sizes.end(), {1, 7, 37, 1000});
    for (int64_t n : sizes) {
      for (int garbage = 0; garbage < 2; ++garbage) {
        std::vector<uint8_t> row = random_row(type, n, rng);
        if (garbage) {
          std::uniform_int_distribution<int> byte(0, 255);
          for (auto& b : row) b = uint8_t(byte(rng));
        }
        std::vector<float> expected(static_cast<size_t>(n)), got(static_cast<size_t>(n));
        ref::dequantize_row(type, row.data(), expected.data(), n);
        ran = for_each_target([&](const std::string&) {
          std::fill(got.begin(), got.end(), -12345.0f);
          dequantize_row(type, row.data(), got.data(), n);
          for (int64_t i = 0; i < n; ++i) {
            ASSERT_TRUE(same_float(got[size_t(i)], expected[size_t(i)]))
                << "n=" << n << " i=" << i << " got " << got[size_t(i)] << " want "
                << expected[size_t(i)];
          }
        });
      }
    }
  }
  std::string names;
  for (const auto& r : ran) names += r + " ";
  std::printf("[ targets  ] dequantize checked on: %s\n", names.c_str());
  EXPECT_FALSE(ran.empty());
}

}  // namespace
}  // namespace ug::kernels
