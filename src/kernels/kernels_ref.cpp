// Scalar reference kernels. Dequantization mirrors ggml's reference routines operation by
// operation, so results are bit-identical as long as the compiler does not fuse a*b-c into one
// FMA (GCC does that by default in C++ when FMA is enabled, hence the pragma).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma clang fp contract(off)
#endif

#include "kernels/kernels_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "util/error.h"

namespace ug::kernels {

namespace detail {

void check_row_args(const char* what, TensorType type, int64_t n) {
  if (!tensor_type_supported(uint32_t(type))) {
    throw Error(std::string(what) + ": unsupported tensor type " + tensor_type_name(type));
  }
  const int64_t block = type_block_elems(type);
  if (n < 0 || n % block != 0) {
    throw Error(std::string(what) + ": " + std::to_string(n) +
                " elements is not a multiple of the " + tensor_type_name(type) + " block size " +
                std::to_string(block));
  }
}

void check_matmul_args(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens,
                       const float* y, int64_t ldy) {
  check_row_args("matmul", w.type, w.cols);
  const auto fail = [](const std::string& msg) { throw Error("matmul: " + msg); };
  if (w.rows < 0) fail("negative row count " + std::to_string(w.rows));
  if (n_tokens < 0) fail("negative token count " + std::to_string(n_tokens));
  if (w.row_bytes < type_row_bytes(w.type, w.cols)) {
    fail("row stride " + std::to_string(w.row_bytes) + " bytes is shorter than a row of " +
         std::to_string(w.cols) + " " + tensor_type_name(w.type) + " elements");
  }
  if (n_tokens == 0 || w.rows == 0) return;
  if (w.data == nullptr || x == nullptr || y == nullptr) fail("null data pointer");
  if (n_tokens > 1 && ldx < w.cols) fail("ldx " + std::to_string(ldx) + " < cols");
  if (n_tokens > 1 && ldy < w.rows) fail("ldy " + std::to_string(ldy) + " < rows");
}

}  // namespace detail

namespace ref {

using namespace blocks;

namespace {

// ggml converts with a C cast after roundf/truncation; NaN (only reachable from NaN/inf input)
// has no defined conversion, we map it to 0 like x86's cvttss2si does once truncated to 8 bits.
int8_t to_int8(float v) {
  if (!(v >= -128.0f && v <= 127.0f)) return 0;
  return int8_t(v);
}

void dequantize_q8_0(const BlockQ8_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK8_0; ++j) y[i * kQK8_0 + j] = float(x[i].qs[j]) * d;
  }
}

void dequantize_q4_0(const BlockQ4_0* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const int x0 = (x[i].qs[j] & 0x0F) - 8;
      const int x1 = (x[i].qs[j] >> 4) - 8;
      y[i * kQK4_0 + j] = float(x0) * d;
      y[i * kQK4_0 + j + kQK4_0 / 2] = float(x1) * d;
    }
  }
}

void dequantize_q4_k(const BlockQ4_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* q = x[i].qs;
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    int is = 0;
    uint8_t sc, m;
    for (int j = 0; j < kQK_K; j += 64) {
      scale_min_k4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * float(sc);
      const float m1 = min * float(m);
      scale_min_k4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * float(sc);
      const float m2 = min * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
      q += 32;
      is += 2;
    }
  }
}

void dequantize_q5_k(const BlockQ5_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const uint8_t* ql = x[i].qs;
    const uint8_t* qh = x[i].qh;
    const float d = fp16_to_fp32(x[i].d);
    const float min = fp16_to_fp32(x[i].dmin);
    int is = 0;
    uint8_t sc, m;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < kQK_K; j += 64) {
      scale_min_k4(is + 0, x[i].scales, &sc, &m);
      const float d1 = d * float(sc);
      const float m1 = min * float(m);
      scale_min_k4(is + 1, x[i].scales, &sc, &m);
      const float d2 = d * float(sc);
      const float m2 = min * float(m);
      for (int l = 0; l < 32; ++l) {
        *y++ = d1 * float((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        *y++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
      }
      ql += 32;
      is += 2;
      u1 = uint8_t(u1 << 2);
      u2 = uint8_t(u2 << 2);
    }
  }
}

void dequantize_q6_k(const BlockQ6_K* x, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (int n = 0; n < kQK_K; n += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = int((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * float(sc[is + 0]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void quantize_q8_0(const float* x, BlockQ8_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) {
      const float a = std::fabs(x[i * kQK8_0 + j]);
      amax = amax > a ? amax : a;  // ggml's MAX(): a NaN is kept only if it comes last
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j) y[i].qs[j] = to_int8(std::round(x[i * kQK8_0 + j] * id));
  }
}

void quantize_q4_0(const float* x, BlockQ4_0* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQK4_0; ++j) {
      const float v = x[i * kQK4_0 + j];
      if (amax < std::fabs(v)) {
        amax = std::fabs(v);
        max = v;
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK4_0 / 2; ++j) {
      const float x0 = x[i * kQK4_0 + j] * id;
      const float x1 = x[i * kQK4_0 + kQK4_0 / 2 + j] * id;
      const int xi0 = std::min(15, int(to_int8(x0 + 8.5f)));
      const int xi1 = std::min(15, int(to_int8(x1 + 8.5f)));
      y[i].qs[j] = uint8_t(uint8_t(xi0) | uint8_t(xi1 << 4));
    }
  }
}

// 0.5 g (1 + tanh(u)) written as g / (1 + exp(-2u)): the same function, without the
// cancellation of 1 + tanh(u) for negative g (which limits the tanh form to ~1e-16 * |g|).
double gelu_tanh(double g) {
  const double kSqrt2OverPi = 0.79788456080286535587989211986876;
  const double u = kSqrt2OverPi * (g + 0.044715 * g * g * g);
  return g / (1.0 + std::exp(-2.0 * u));
}

}  // namespace

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  detail::check_row_args("dequantize_row", type, n);
  const int64_t nb = n / type_block_elems(type);
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case TensorType::F16: {
      const auto* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = fp16_to_fp32(h);
      }
      return;
    }
    case TensorType::BF16: {
      const auto* p = static_cast<const uint8_t*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        dst[i] = bf16_to_fp32(h);
      }
      return;
    }
    case TensorType::Q8_0:
      return dequantize_q8_0(static_cast<const BlockQ8_0*>(src), dst, nb);
    case TensorType::Q4_0:
      return dequantize_q4_0(static_cast<const BlockQ4_0*>(src), dst, nb);
    case TensorType::Q4_K:
      return dequantize_q4_k(static_cast<const BlockQ4_K*>(src), dst, nb);
    case TensorType::Q5_K:
      return dequantize_q5_k(static_cast<const BlockQ5_K*>(src), dst, nb);
    case TensorType::Q6_K:
      return dequantize_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb);
    default:
      break;
  }
  throw Error("dequantize_row: unsupported tensor type " + tensor_type_name(type));
}

void quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
  detail::check_row_args("quantize_row", type, n);
  auto* out = static_cast<uint8_t*>(dst);
  switch (type) {
    case TensorType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case TensorType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_fp16(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case TensorType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = fp32_to_bf16(src[i]);
        std::memcpy(out + 2 * i, &h, 2);
      }
      return;
    case TensorType::Q8_0:
      return quantize_q8_0(src, static_cast<BlockQ8_0*>(dst), n / kQK8_0);
    case TensorType::Q4_0:
      return quantize_q4_0(src, static_cast<BlockQ4_0*>(dst), n / kQK4_0);
    case TensorType::Q4_K:
      return quantize_q4_k(src, static_cast<BlockQ4_K*>(dst), n / kQK_K);
    case TensorType::Q5_K:
      return quantize_q5_k(src, static_cast<BlockQ5_K*>(dst), n / kQK_K);
    case TensorType::Q6_K:
      return quantize_q6_k(src, static_cast<BlockQ6_K*>(dst), n / kQK_K);
    default:
      break;
  }
  throw Error("quantize_row: no quantizer for tensor type " + tensor_type_name(type));
}

float dot_row(TensorType type, const void* row, const float* x, int64_t n) {
  detail::check_row_args("dot_row", type, n);
  std::vector<float> w(static_cast<size_t>(n));
  dequantize_row(type, row, w.data(), n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += double(w[size_t(i)]) * double(x[i]);
  return float(sum);
}

void axpy_row(TensorType type, const void* row, float a, float* y, int64_t n) {
  detail::check_row_args("axpy_row", type, n);
  std::vector<float> w(static_cast<size_t>(n));
  dequantize_row(type, row, w.data(), n);
  for (int64_t i = 0; i < n; ++i) y[i] = float(double(y[i]) + double(a) * double(w[size_t(i)]));
}

void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy) {
  detail::check_matmul_args(w, x, ldx, n_tokens, y, ldy);
  std::vector<float> row(static_cast<size_t>(w.cols));
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w.type, base + r * w.row_bytes, row.data(), w.cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double sum = 0.0;
      for (int64_t c = 0; c < w.cols; ++c) sum += double(row[size_t(c)]) * double(x[t * ldx + c]);
      y[t * ldy + r] = float(sum);
    }
  }
}

void quantize_activations(const float* x, int64_t n, int16_t* q, float* d) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + 32 * b;
    float amax = 0.0f;
    bool finite = true;
    for (int i = 0; i < 32; ++i) {
      finite = finite && std::isfinite(xb[i]);
      amax = std::max(amax, std::fabs(xb[i]));
    }
    if (!finite) {
      d[b] = std::numeric_limits<float>::quiet_NaN();
      std::fill(q + 32 * b, q + 32 * b + 32, int16_t(0));
      continue;
    }
    d[b] = amax / 32767.0f;
    const float inv = d[b] >= std::numeric_limits<float>::min() ? 1.0f / d[b] : 0.0f;
    for (int i = 0; i < 32; ++i) q[32 * b + i] = int16_t(std::nearbyint(xb[i] * inv));
  }
}

void matmul_quantized_activations(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens,
                                  float* y, int64_t ldy) {
  detail::check_matmul_args(w, x, ldx, n_tokens, y, ldy);
  std::vector<float> row(static_cast<size_t>(w.cols));
  std::vector<int16_t> q(static_cast<size_t>(w.cols));
  std::vector<float> d(static_cast<size_t>(w.cols / 32 + 1));
  std::vector<double> xq(static_cast<size_t>(n_tokens * w.cols));
  for (int64_t t = 0; t < n_tokens; ++t) {
    quantize_activations(x + t * ldx, w.cols, q.data(), d.data());
    for (int64_t c = 0; c < w.cols; ++c) {
      xq[size_t(t * w.cols + c)] = double(d[size_t(c / 32)]) * double(q[size_t(c)]);
    }
  }
  const auto* base = static_cast<const uint8_t*>(w.data);
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w.type, base + r * w.row_bytes, row.data(), w.cols);
    for (int64_t t = 0; t < n_tokens; ++t) {
      double sum = 0.0;
      for (int64_t c = 0; c < w.cols; ++c)
        sum += double(row[size_t(c)]) * xq[size_t(t * w.cols + c)];
      y[t * ldy + r] = float(sum);
    }
  }
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  if (n <= 0) return;
  double ss = 0.0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * double(x[i]);
  const double inv = 1.0 / std::sqrt(ss / double(n) + double(eps));
  for (int64_t i = 0; i < n; ++i) {
    const double v = double(x[i]) * inv;
    y[i] = float(w ? v * double(w[i]) : v);
  }
}

void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = float(gelu_tanh(gate[i]) * double(up[i]));
}

void scale(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

void add(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void softcap(float* x, float cap, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = float(double(cap) * std::tanh(double(x[i]) / double(cap)));
}

void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::max(max, x[i]);
  if (max == -std::numeric_limits<float>::infinity()) {
    for (int64_t i = 0; i < n; ++i) x[i] = 0.0f;  // nothing to attend to
    return;
  }
  double sum = 0.0;
  std::vector<double> e(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    e[size_t(i)] = std::exp(double(x[i]) - double(max));
    sum += e[size_t(i)];
  }
  for (int64_t i = 0; i < n; ++i) x[i] = float(e[size_t(i)] / sum);
}

float dot(const float* a, const float* b, int64_t n) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += double(a[i]) * double(b[i]);
  return float(sum);
}

void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = float(double(y[i]) + double(a) * double(x[i]));
}

}  // namespace ref
}  // namespace ug::kernels
