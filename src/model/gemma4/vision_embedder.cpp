#include "model/gemma4/vision_embedder.h"

#include <cmath>

#include "util/error.h"

namespace ug::gemma4 {

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps) {
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) mean += x[i];
  mean /= double(n);
  double var = 0;
  for (int64_t i = 0; i < n; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= double(n);
  const double inv = 1.0 / std::sqrt(var + double(eps));
  for (int64_t i = 0; i < n; ++i) y[i] = float((x[i] - mean) * inv) * w[i] + b[i];
}

std::vector<float> embed_patches(const VisionEmbedder& e, const float* patches,
                                 const int32_t* pos_x, const int32_t* pos_y, int n,
                                 ThreadPool& pool) {
  const int64_t P = e.patch_values, M = e.n_mm;
  for (int i = 0; i < n; ++i) {
    if (pos_x[i] < 0 || pos_x[i] >= e.n_pos || pos_y[i] < 0 || pos_y[i] >= e.n_pos) {
      throw Error("vision embedder: patch position (" + std::to_string(pos_x[i]) + ", " +
                  std::to_string(pos_y[i]) + ") outside the " + std::to_string(e.n_pos) +
                  "-entry position table (image too large for this projector)");
    }
  }
  std::vector<float> normed(size_t(n) * P);
  std::vector<float> chw(static_cast<size_t>(P));
  for (int i = 0; i < n; ++i) {
    const float* src = patches + size_t(i) * P;
    if (e.chw_columns) {
      // GGUF column c*2304 + pixel holds HF column pixel*3 + c.
      const int64_t pixels = P / 3;
      for (int64_t px = 0; px < pixels; ++px) {
        for (int c = 0; c < 3; ++c) chw[size_t(c * pixels + px)] = src[px * 3 + c];
      }
      src = chw.data();
    }
    layer_norm(src, e.ln1_w.data(), e.ln1_b.data(), &normed[size_t(i) * P], P, e.ln_eps);
  }
  std::vector<float> u(size_t(n) * M);
  kernels::matmul(e.dense, normed.data(), P, n, u.data(), M, pool);
  std::vector<float> row(static_cast<size_t>(M));
  for (int i = 0; i < n; ++i) {
    float* v = &u[size_t(i) * M];
    kernels::add(e.dense_b.data(), v, M);
    layer_norm(v, e.ln2_w.data(), e.ln2_b.data(), v, M, e.ln_eps);
    kernels::dequantize_row(
        e.pos.type,
        static_cast<const uint8_t*>(e.pos.data) + e.pos_row(0, pos_x[i]) * e.pos.row_bytes,
        row.data(), M);
    kernels::add(row.data(), v, M);
    kernels::dequantize_row(
        e.pos.type,
        static_cast<const uint8_t*>(e.pos.data) + e.pos_row(1, pos_y[i]) * e.pos.row_bytes,
        row.data(), M);
    kernels::add(row.data(), v, M);
    layer_norm(v, e.ln3_w.data(), e.ln3_b.data(), v, M, e.ln_eps);
    kernels::rms_norm(v, nullptr, v, M, e.rms_eps);
  }
  std::vector<float> out(size_t(n) * e.n_out);
  kernels::matmul(e.proj, u.data(), M, n, out.data(), e.n_out, pool);
  return out;
}

}  // namespace ug::gemma4
