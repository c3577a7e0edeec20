// Decode-size matmul on quantized weights with int16-quantized activations (gemv_i16.cpp).
// Internal to src/kernels: matmul/matmul_rowwise route here; tests reach it through them.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace ug::kernels::detail {

// Tokens one pass of the kernel multiplies with each unpacked weight block; matmul sends batches
// up to this size here (larger ones are prefill and go to the fp32 GEMM).
inline constexpr int64_t kGemvI16MaxTokens = 8;

// Whether weights of `type` have an integer kernel (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K).
bool gemv_i16_supports(TensorType type);

// y[t * ldy + r] = sum_c W[r, c] * xq[t, c] for any n_tokens, where xq is row t of x quantized to
// blocks of 32 int16 values with an fp32 scale (ref::quantize_activations). Every token's output
// is bit-identical whatever n_tokens, the thread count or the other tokens are. Arguments are
// checked by the caller; w.cols > 0, w.rows > 0, n_tokens > 0.
void gemv_i16(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
              ThreadPool& pool);

}  // namespace ug::kernels::detail
