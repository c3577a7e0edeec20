// Helpers shared by the kernel tests: deterministic random rows of every weight type and a loop
// over every SIMD target this machine runs.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "format/tensor_type.h"
#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"

namespace ug::kernels::test {

inline const std::vector<TensorType>& all_weight_types() {
  static const std::vector<TensorType> types = {
      TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,
      TensorType::Q4_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};
  return types;
}

inline void put_u16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}

// A row of n elements of `type` with plausible contents: float types hold values in [-1, 1],
// block scales are fp16 values in [scale_lo, scale_hi], everything else is random bytes.
inline std::vector<uint8_t> random_row(TensorType type, int64_t n, std::mt19937& rng,
                                       float scale_lo = 1e-3f, float scale_hi = 2e-2f) {
  const int64_t bytes = type_row_bytes(type, n);
  std::vector<uint8_t> row(static_cast<size_t>(bytes));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : row) b = uint8_t(byte(rng));
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  std::uniform_real_distribution<float> scale(scale_lo, scale_hi);
  auto fp16 = [&](float v) { return fp32_to_fp16(v); };
  uint8_t* p = row.data();
  const int64_t be = type_block_elems(type);
  const int64_t bb = type_block_bytes(type);
  for (int64_t b = 0; b < n / be; ++b) {
    uint8_t* blk = p + b * bb;
    switch (type) {
      case TensorType::F32: {
        const float v = value(rng);
        std::memcpy(blk, &v, 4);
        break;
      }
      case TensorType::F16:
        put_u16(blk, fp16(value(rng)));
        break;
      case TensorType::BF16:
        put_u16(blk, fp32_to_bf16(value(rng)));
        break;
      case TensorType::Q8_0:
      case TensorType::Q4_0:
        put_u16(blk, fp16(scale(rng)));
        break;
      case TensorType::Q4_K:
      case TensorType::Q5_K:
        put_u16(blk, fp16(scale(rng)));
        put_u16(blk + 2, fp16(scale(rng)));
        break;
      case TensorType::Q6_K:
        put_u16(blk + 208, fp16(scale(rng) * 0.1f));
        break;
      default:
        break;
    }
  }
  return row;
}

inline std::vector<float> random_floats(int64_t n, std::mt19937& rng, float lo = -1.0f,
                                        float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// Bitwise equality, except that any NaN equals any NaN (hardware conversions may quiet NaNs).
inline bool same_float(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  return ua == ub;
}

// Runs body() once per SIMD target, with dispatch restricted to that target; restores the
// default afterwards. Returns the names of the targets that ran.
template <class Body>
std::vector<std::string> for_each_target(const Body& body) {
  force_targets(0);
  const int64_t targets = available_targets();
  std::vector<std::string> ran;
  for (int64_t rest = targets; rest != 0; rest &= rest - 1) {
    const int64_t target = rest & -rest;
    force_targets(target);
    const std::string name = active_target();
    EXPECT_EQ(name, target_name(target));
    SCOPED_TRACE("target " + name);
    body(name);
    ran.push_back(name);
  }
  force_targets(0);
  return ran;
}

}  // namespace ug::kernels::test
