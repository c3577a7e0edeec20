// SIMD math on fp32 activations (Google Highway, runtime dispatch). Knows nothing of Gemma.
// Weights may be stored in any supported TensorType; accumulation is always fp32.
#pragma once

#include <cstdint>

#include "format/tensor_type.h"
#include "kernels/thread_pool.h"

namespace ug::kernels {

// A row-major matrix of `rows` rows, each `cols` elements of `type`, rows `row_bytes` apart.
// For a GGUF weight with ggml shape {in, out}: rows = out, cols = in.
struct Matrix {
  TensorType type = TensorType::F32;
  const void* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t row_bytes = 0;
};

// y[t * ldy + r] = sum_c W[r, c] * x[t * ldx + c]  for t < n_tokens, r < W.rows.
// Multithreaded over rows (and token blocks for large n_tokens). x and y must not alias.
// Decode-size products (n_tokens <= 8) on Q8_0, Q4_0, Q4_K, Q5_K and Q6_K weights quantize each
// row of x to blocks of 32 int16 values with an fp32 scale (relative rounding <= 2^-16 of the
// block's largest value) and use exact integer dot products per block, fp32 across blocks;
// set_exact_matmul(true) keeps x in fp32.
void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
            ThreadPool& pool);

// Same product, but every token's row is bit-identical to what matmul computes for that token
// alone (n_tokens = 1), whatever n_tokens is (int16 activations for the same weight types): the
// decode path for a batch of independent sequences, whose results must not depend on which other
// sequences share the step. The weights are still read once for all tokens.
void matmul_rowwise(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
                    int64_t ldy, ThreadPool& pool);

// Process-wide: true makes every product use fp32 activations (slower decode; what the scalar
// reference computes). Default false.
void set_exact_matmul(bool exact);
bool exact_matmul();

// Decodes n elements (a multiple of the block size) of `type` at `src` into fp32.
void dequantize_row(TensorType type, const void* src, float* dst, int64_t n);
// Encodes n fp32 values into `type` (F32, F16, BF16, Q8_0, Q4_0: bit-identical to ggml's reference
// quantizers, round-to-nearest-even for F16/BF16; Q4_K, Q5_K, Q6_K: the same least-squares search
// as llama-quantize without an importance matrix). Other types: throws ug::Error.
void quantize_row(TensorType type, const float* src, void* dst, int64_t n);

// dot(row of `type`, x) over n elements, fp32 accumulation.
float dot_row(TensorType type, const void* row, const float* x, int64_t n);
// y += a * row (row of `type`), n elements.
void axpy_row(TensorType type, const void* row, float a, float* y, int64_t n);

// y = x / sqrt(mean(x^2) + eps) * w   (w may be null: no weight). y may alias x.
void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps);
// out = gelu_tanh(gate) * up (tanh approximation, exact tanh). out may alias gate or up.
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n);
// x *= s
void scale(float* x, float s, int64_t n);
// y += x
void add(const float* x, float* y, int64_t n);
// x = cap * tanh(x / cap)
void softcap(float* x, float cap, int64_t n);
// In-place softmax over n values (max-subtracted, fp32). Returns nothing; entries at -inf become 0.
void softmax(float* x, int64_t n);
float dot(const float* a, const float* b, int64_t n);
// y += a * x
void axpy(float a, const float* x, float* y, int64_t n);

// Name of the SIMD target the dispatcher picked ("AVX3", "AVX2", "NEON", "SCALAR", ...).
const char* active_target();
// Restricts dispatch to targets in `mask` (hwy target bits); 0 restores all. For tests/--simd.
void force_targets(int64_t mask);
// Targets compiled into the kernels that this CPU runs (hwy target bits, current force_targets
// restriction applied); lower bits are better targets. Loop over its bits to test every target.
int64_t available_targets();
// Name of one hwy target bit ("AVX3", "AVX2", "SSE4", "SSSE3", "SCALAR", ...).
const char* target_name(int64_t target);

}  // namespace ug::kernels
