// Scalar reference implementations of kernels.h, plus exact half/bfloat conversions and the ggml
// block layouts. Slow and simple: used by tests to check the SIMD kernels and as a readable
// statement of what each kernel computes. Reductions (dot products, sums of squares, softmax sums)
// accumulate in double so the reference is more accurate than the fp32 kernels it checks.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"

namespace ug::kernels {

// IEEE binary16 -> binary32, exact (NaN payloads kept).
inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else {
    // Zero or subnormal: mantissa * 2^-24 is exact in fp32.
    const float magnitude = float(mantissa) * (1.0f / 16777216.0f);
    std::memcpy(&bits, &magnitude, 4);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// binary32 -> binary16, round-to-nearest-even; overflow gives inf; NaN stays NaN (quiet, top
// payload bits kept) -- the same results as the x86 F16C instruction ggml uses.
inline uint16_t fp32_to_fp16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return uint16_t(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  if (abs >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // >= 65520 rounds to inf
  if (abs < 0x38800000u) {
    // Below the smallest normal half: let an fp32 addition do the RNE shift into the subnormal
    // grid (0.5f has the exponent that aligns 2^-24 with the last mantissa bit).
    float v;
    std::memcpy(&v, &abs, 4);
    const float magic = 0.5f;
    float sum = v + magic;
    uint32_t sum_bits, magic_bits;
    std::memcpy(&sum_bits, &sum, 4);
    std::memcpy(&magic_bits, &magic, 4);
    return uint16_t(sign | (sum_bits - magic_bits));
  }
  const uint32_t odd = (abs >> 13) & 1u;
  const uint32_t rounded = abs + 0xC8000FFFu + odd;  // rebias exponent (-112 << 23) + RNE bias
  return uint16_t(sign | (rounded >> 13));
}

inline float bf16_to_fp32(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// binary32 -> bfloat16 as ggml does it: round-to-nearest-even, NaN forced quiet.
inline uint16_t fp32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((bits >> 16) | 64u);
  return uint16_t((bits + (0x7FFFu + ((bits >> 16) & 1u))) >> 16);
}

// ggml block layouts (little-endian, packed; fp16 fields stored as raw bits).
namespace blocks {
inline constexpr int kQK8_0 = 32;
inline constexpr int kQK4_0 = 32;
inline constexpr int kQK_K = 256;

struct BlockQ8_0 {  // 34 bytes: value = d * qs[i]
  uint16_t d;
  int8_t qs[32];
};
struct BlockQ4_0 {  // 18 bytes: element i < 16 = low nibble of qs[i], i >= 16 = high nibble of
  uint16_t d;       // qs[i - 16]; value = d * (nibble - 8)
  uint8_t qs[16];
};
struct BlockQ4_K {     // 144 bytes: 8 sub-blocks of 32, 6-bit scale and min each
  uint16_t d;          // super-block scale for the scales
  uint16_t dmin;       // super-block scale for the mins
  uint8_t scales[12];  // packed 6-bit scales/mins (see scale_min_k4)
  uint8_t qs[128];     // 64 elements per 32 bytes: low nibbles first, then high nibbles
};
struct BlockQ5_K {  // 176 bytes: Q4_K plus one high bit per element
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];  // bit 2j (low nibble half) / 2j+1 (high nibble half) for 64-element group j
  uint8_t qs[128];
};
struct BlockQ6_K {  // 210 bytes: 16 sub-blocks of 16 with int8 scales
  uint8_t ql[128];  // low 4 bits
  uint8_t qh[64];   // high 2 bits
  int8_t scales[16];
  uint16_t d;
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210);

// 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K super-block.
inline void scale_min_k4(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}
}  // namespace blocks

namespace ref {

// Same contracts as the functions of the same names in kernels.h (including argument checks),
// computed one element at a time. Dequantization is bit-identical to ggml's.
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);
// K-quant encoders (quantize_k.cpp), nb super-blocks of 256 values.
void quantize_q4_k(const float* x, blocks::BlockQ4_K* y, int64_t nb);
void quantize_q5_k(const float* x, blocks::BlockQ5_K* y, int64_t nb);
void quantize_q6_k(const float* x, blocks::BlockQ6_K* y, int64_t nb);
float dot_row(TensorType type, const void* row, const float* x, int64_t n);
void axpy_row(TensorType type, const void* row, float a, float* y, int64_t n);
// Single-threaded matmul: every output is a double-accumulated dot product.
void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy);
// The activation quantization of the decode kernels (matmul with at most 8 tokens, matmul_rowwise
// on Q8_0/Q4_0/Q4_K/Q5_K/Q6_K weights): n (a multiple of 32) values to blocks of 32 with
// d[b] = max|x| / 32767 and q = x * (1 / d) rounded to nearest even (q = 0 when d is below the
// normal fp32 range); a block holding inf or NaN gets d = NaN and q = 0.
void quantize_activations(const float* x, int64_t n, int16_t* q, float* d);
// matmul on the quantized activations: sum_c W[r, c] * d[c / 32] * q[c], double-accumulated.
void matmul_quantized_activations(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens,
                                  float* y, int64_t ldy);

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n);
void scale(float* x, float s, int64_t n);
void add(const float* x, float* y, int64_t n);
void softcap(float* x, float cap, int64_t n);
void softmax(float* x, int64_t n);
float dot(const float* a, const float* b, int64_t n);
void axpy(float a, const float* x, float* y, int64_t n);

}  // namespace ref

namespace detail {
// Throws ug::Error naming `what` unless `type` is a supported weight type and n >= 0 is a
// multiple of its block size.
void check_row_args(const char* what, TensorType type, int64_t n);
// Throws ug::Error unless the matrix/activation shapes are consistent.
void check_matmul_args(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens,
                       const float* y, int64_t ldy);
}  // namespace detail

}  // namespace ug::kernels
