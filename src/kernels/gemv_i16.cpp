// Decode-size matmul (a few tokens) on Q8_0, Q4_0, Q4_K, Q5_K and Q6_K weights with integer dot
// products. Compiled once per Highway target and picked at runtime.
//
// Decode streams every weight once per token. Turning each weight into fp32 and FMA-ing it costs
// several instructions per weight, so that path ran far below memory bandwidth. Here each
// activation row is quantized once per call to blocks of 32 int16 values with an fp32 scale
// (d = max|x| / 32767: the rounding moves an activation by at most 2^-16 of its block's largest
// value, ~250x less than llama.cpp's int8 activations, so results stay within float32-reference
// tolerances), and each 32-weight block meets it in an integer dot product that is exact. Only the
// per-block scaling and the sum over blocks are fp32:
//   y = sum_b (scale_w[b] * scale_x[b]) * sum_{i in b} qw_i * qx_i   (- K-quant min terms)
// x86 (AVX2 and up) uses pmaddwd, or vpdpwssd where the CPU has AVX-512 VNNI (Highway's AVX3_DL
// target); other targets run the same integer arithmetic in portable code.
//
// A tile of R weight rows x T tokens unpacks each weight block once and multiplies it with every
// token, so verifying k drafted tokens streams the weights once. Every (row, token) output sees
// the same operations in the same order whatever the tile shape, thread count or batch size:
// matmul_rowwise relies on that.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma clang fp contract(off)
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>

#include "kernels/gemv_i16.h"
#include "kernels/kernels_ref.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/gemv_i16.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"

#ifndef UG_KERNELS_GEMV_I16_SHARED_
#define UG_KERNELS_GEMV_I16_SHARED_
namespace ug::kernels::detail {

constexpr int64_t kXBlock = 32;

// One token's quantized activations: q[cols], then per block the scale d, the integer sum of its
// q and that sum times d (the K-quant min terms).
struct ActRow {
  const int16_t* q;
  const float* d;
  const int32_t* s;
  const float* ds;
};

// Bytes of one token's quantized activations (64-byte multiple, so every token stays aligned).
inline int64_t act_row_bytes(int64_t cols) {
  const int64_t nb = cols / kXBlock;
  return (2 * cols + 12 * nb + 63) / 64 * 64;
}

inline ActRow act_row(uint8_t* base, int64_t cols) {
  const int64_t nb = cols / kXBlock;
  const int64_t bytes = 2 * cols;
  return ActRow{reinterpret_cast<const int16_t*>(base),
                reinterpret_cast<const float*>(base + bytes),
                reinterpret_cast<const int32_t*>(base + bytes + 4 * nb),
                reinterpret_cast<const float*>(base + bytes + 8 * nb)};
}

// Grow-only 64-byte aligned byte buffer, one per calling thread.
struct ByteScratch {
  hwy::AlignedFreeUniquePtr<uint8_t[]> data;
  size_t capacity = 0;
  uint8_t* get(size_t n) {
    if (n > capacity) {
      data = hwy::AllocateAligned<uint8_t>(n);
      if (!data) throw std::bad_alloc();
      capacity = n;
    }
    return data.get();
  }
};

// Row ranges handed to whichever thread asks next (the machine may be shared).
struct RowQueue {
  std::atomic<int64_t> next{0};
  int64_t total = 0;
  int64_t chunk = 16;
  bool take(int64_t* begin, int64_t* end) {
    const int64_t b = next.fetch_add(chunk, std::memory_order_relaxed);
    if (b >= total) return false;
    *begin = b;
    *end = std::min(total, b + chunk);
    return true;
  }
};

constexpr int kMaxTile = 8;

// What a tile kernel needs: R rows starting at w0, T tokens' activations and outputs.
struct TileArgs {
  const uint8_t* w0;
  int64_t row_bytes;
  int64_t nb;  // 32-element blocks per row
  ActRow x[kMaxTile];
  float* y[kMaxTile];  // y[t][i]: row i of the tile, token t
};

}  // namespace ug::kernels::detail
#endif  // UG_KERNELS_GEMV_I16_SHARED_

HWY_BEFORE_NAMESPACE();
namespace ug::kernels::HWY_NAMESPACE {

using detail::ActRow;
using detail::kXBlock;
using detail::TileArgs;

HWY_INLINE float HalfToFloat(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  return _cvtsh_ss(bits);
#else
  return fp16_to_fp32(bits);
#endif
}

// Quantizes n values (a multiple of 32) to int16 blocks: d = max|x| / 32767, q = round-to-
// nearest-even(x * (1 / d)) (q = 0 where d is below the normal range); a block holding inf or NaN
// gets d = NaN so the outputs it feeds are NaN. Bit-identical to ref::quantize_activations (the
// rounding is the fp32 magic-number trick, exact for |v| < 2^22; here |v| <= 32767).
void QuantizeActivations(const float* x, int64_t n, uint8_t* out) {
  const int64_t nb = n / kXBlock;
  auto* q = reinterpret_cast<int16_t*>(out);
  auto* d = reinterpret_cast<float*>(out + 2 * n);
  auto* s = reinterpret_cast<int32_t*>(out + 2 * n + 4 * nb);
  auto* ds = reinterpret_cast<float*>(out + 2 * n + 8 * nb);
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kXBlock;
    float amax = 0.0f;
    bool finite = true;
    for (int i = 0; i < kXBlock; ++i) {
      const float a = std::fabs(xb[i]);
      finite = finite && a <= std::numeric_limits<float>::max();
      amax = a > amax ? a : amax;
    }
    int16_t* qb = q + b * kXBlock;
    if (!finite) {
      std::fill(qb, qb + kXBlock, int16_t(0));
      d[b] = std::numeric_limits<float>::quiet_NaN();
      s[b] = 0;
      ds[b] = d[b];
      continue;
    }
    const float scale = amax / 32767.0f;
    // A block below the normal range (max|x| < ~4e-34) rounds to zero: 1 / scale could overflow.
    const float inv = scale >= std::numeric_limits<float>::min() ? 1.0f / scale : 0.0f;
    int32_t sum = 0;
    for (int i = 0; i < kXBlock; ++i) {
      const float v = xb[i] * inv;
      const int32_t r = int32_t((v + kMagic) - kMagic);
      qb[i] = int16_t(r);
      sum += r;
    }
    d[b] = scale;
    s[b] = sum;
    ds[b] = scale * float(sum);
  }
}

// 6-bit scales and mins of the 8 sub-blocks of a Q4_K/Q5_K super-block, times d and dmin.
HWY_INLINE void KScales(const uint8_t* blk, float* dsc, float* dmn) {
  const float d = HalfToFloat(blk);
  const float dmin = HalfToFloat(blk + 2);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    blocks::scale_min_k4(j, blk + 4, &sc, &m);
    dsc[j] = d * float(sc);
    dmn[j] = dmin * float(m);
  }
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
// ------------------------------------------------------------------ x86: AVX2, AVX-512, VNNI
// Weights are unpacked to int16 (16 per vector, a block is two vectors) and multiplied with the
// activations by pmaddwd: each int32 lane sums 4 products (|product| < 2^22), so nothing
// overflows or saturates. AVX-512 VNNI CPUs fuse multiply and add (vpdpwssd).

// acc + per 32-bit lane k: w[2k] * x[2k] + w[2k+1] * x[2k+1].
HWY_INLINE __m256i MaddAcc(__m256i acc, __m256i w, __m256i x) {
#if HWY_TARGET == HWY_AVX3_DL
  // EVEX vpdpwssd (AVX512_VNNI + VL, which AVX3_DL implies); inline asm because Highway 1.0.3's
  // AVX3_DL target attributes do not name avx512vnni.
  asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(w), "v"(x));
  return acc;
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(w, x));
#endif
}

HWY_INLINE __m256i LoadX(const ActRow& x, int64_t b, int half) {
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(x.q + b * kXBlock + 16 * half));
}

// Integer dot product of a block (lo = elements 0..15, hi = 16..31) with token x's block b.
HWY_INLINE __m256i BlockDot(__m256i lo, __m256i hi, const ActRow& x, int64_t b) {
  return MaddAcc(MaddAcc(_mm256_setzero_si256(), lo, LoadX(x, b, 0)), hi, LoadX(x, b, 1));
}

HWY_INLINE __m256 Fma(__m256i dot, float scale, __m256 acc) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(scale), acc);
}

HWY_INLINE __m256 FmaV(__m256i dot, __m256 scale, __m256 acc) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc);
}

// Block scale products dw[i] * dx[t] of an R-row tile, lane i of s[t] (R == 4: the four fp16
// weight scales are converted together; the products equal the scalar ones bit for bit).
template <int R, int T>
HWY_INLINE void TileScales(const TileArgs& a, const uint8_t* blk0, int64_t b, __m128 (&s)[T]) {
  uint16_t h[4] = {0, 0, 0, 0};
  for (int i = 0; i < R; ++i) std::memcpy(&h[i], blk0 + i * a.row_bytes, 2);
  int64_t packed;
  std::memcpy(&packed, h, 8);
  const __m128i bits = _mm_cvtsi64_si128(packed);
  const __m128 dw = _mm_cvtph_ps(bits);
  for (int t = 0; t < T; ++t) s[t] = _mm_mul_ps(dw, _mm_set1_ps(a.x[t].d[b]));
}

// Lane i of v in every lane.
template <int I>
HWY_INLINE __m256 Lane(__m128 v) {
  return _mm256_broadcastss_ps(_mm_shuffle_ps(v, v, _MM_SHUFFLE(I, I, I, I)));
}

HWY_INLINE __m256 LaneOf(__m128 v, int i) {
  switch (i) {
    case 0:
      return _mm256_broadcastss_ps(v);
    case 1:
      return Lane<1>(v);
    case 2:
      return Lane<2>(v);
    default:
      return Lane<3>(v);
  }
}

// 32 int8 -> two vectors of 16 int16.
HWY_INLINE void Widen(__m256i w, __m256i* lo, __m256i* hi) {
  *lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(w));
  *hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(w, 1));
}

HWY_INLINE float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int R, int T>
HWY_INLINE void Zero(__m256 (&acc)[R][T]) {
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
  }
}

template <int R, int T>
HWY_INLINE void Store(const TileArgs& a, __m256 (&acc)[R][T]) {
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < T; ++t) a.y[t][i] = HSum(acc[i][t]);
  }
}

template <int R, int T>
void TileQ4_0(const TileArgs& a) {
  __m256 acc[R][T];
  Zero(acc);
  const __m128i low4 = _mm_set1_epi8(0x0F);
  const __m128i eight = _mm_set1_epi8(8);
  for (int64_t b = 0; b < a.nb; ++b) {
    __m128 scales[T];
    TileScales<R, T>(a, a.w0 + b * 18, b, scales);
    HWY_UNROLL(4)
    for (int i = 0; i < R; ++i) {
      const uint8_t* blk = a.w0 + i * a.row_bytes + b * 18;
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
      const __m256i lo = _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_and_si128(q, low4), eight));
      const __m256i hi =
          _mm256_cvtepi8_epi16(_mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), low4), eight));
      HWY_UNROLL(8)
      for (int t = 0; t < T; ++t) {
        acc[i][t] = FmaV(BlockDot(lo, hi, a.x[t], b), LaneOf(scales[t], i), acc[i][t]);
      }
    }
  }
  Store(a, acc);
}

template <int R, int T>
void TileQ8_0(const TileArgs& a) {
  __m256 acc[R][T];
  Zero(acc);
  for (int64_t b = 0; b < a.nb; ++b) {
    __m128 scales[T];
    TileScales<R, T>(a, a.w0 + b * 34, b, scales);
    HWY_UNROLL(4)
    for (int i = 0; i < R; ++i) {
      const uint8_t* blk = a.w0 + i * a.row_bytes + b * 34;
      const __m256i lo =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
      const __m256i hi =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 18)));
      HWY_UNROLL(8)
      for (int t = 0; t < T; ++t) {
        acc[i][t] = FmaV(BlockDot(lo, hi, a.x[t], b), LaneOf(scales[t], i), acc[i][t]);
      }
    }
  }
  Store(a, acc);
}

// Q4_K (kHigh = false) and Q5_K (kHigh = true): unsigned 4/5-bit values with a 6-bit scale and
// min per 32-element sub-block. The mins multiply the block sums of x, accumulated separately.
template <bool kHigh, int R, int T>
void TileK45(const TileArgs& a) {
  constexpr int64_t kBytes = kHigh ? 176 : 144;
  __m256 acc[R][T], macc[R][T];
  Zero(acc);
  Zero(macc);
  const __m256i low4 = _mm256_set1_epi16(0x0F);
  const __m256i bit4 = _mm256_set1_epi16(0x10);
  const int64_t nsb = a.nb / 8;
  for (int64_t sb = 0; sb < nsb; ++sb) {
    HWY_UNROLL(4)
    for (int i = 0; i < R; ++i) {
      const uint8_t* blk = a.w0 + i * a.row_bytes + sb * kBytes;
      alignas(32) float dsc[8], dmn[8];
      KScales(blk, dsc, dmn);
      const uint8_t* qs = blk + (kHigh ? 48 : 16);
      __m256i qh_lo = _mm256_setzero_si256(), qh_hi = _mm256_setzero_si256();
      if constexpr (kHigh) {
        qh_lo = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16)));
        qh_hi = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32)));
      }
      HWY_UNROLL(4)
      for (int p = 0; p < 4; ++p) {
        const auto* q = reinterpret_cast<const __m128i*>(qs + 32 * p);
        const __m256i q_lo = _mm256_cvtepu8_epi16(_mm_loadu_si128(q));
        const __m256i q_hi = _mm256_cvtepu8_epi16(_mm_loadu_si128(q + 1));
        // Sub-block 2p: low nibbles; 2p + 1: high nibbles.
        __m256i u0_lo = _mm256_and_si256(q_lo, low4), u0_hi = _mm256_and_si256(q_hi, low4);
        __m256i u1_lo = _mm256_srli_epi16(q_lo, 4), u1_hi = _mm256_srli_epi16(q_hi, 4);
        if constexpr (kHigh) {
          // Fifth bits: bit 2p of qh for the low nibbles, bit 2p + 1 for the high ones.
          u0_lo = _mm256_or_si256(u0_lo, _mm256_and_si256(_mm256_slli_epi16(qh_lo, 4), bit4));
          u0_hi = _mm256_or_si256(u0_hi, _mm256_and_si256(_mm256_slli_epi16(qh_hi, 4), bit4));
          u1_lo = _mm256_or_si256(u1_lo, _mm256_and_si256(_mm256_slli_epi16(qh_lo, 3), bit4));
          u1_hi = _mm256_or_si256(u1_hi, _mm256_and_si256(_mm256_slli_epi16(qh_hi, 3), bit4));
          qh_lo = _mm256_srli_epi16(qh_lo, 2);
          qh_hi = _mm256_srli_epi16(qh_hi, 2);
        }
        const int64_t b = 8 * sb + 2 * p;
        HWY_UNROLL(8)
        for (int t = 0; t < T; ++t) {
          acc[i][t] = Fma(BlockDot(u0_lo, u0_hi, a.x[t], b), dsc[2 * p] * a.x[t].d[b], acc[i][t]);
          acc[i][t] = Fma(BlockDot(u1_lo, u1_hi, a.x[t], b + 1), dsc[2 * p + 1] * a.x[t].d[b + 1],
                          acc[i][t]);
        }
      }
      const __m256 mins = _mm256_load_ps(dmn);
      HWY_UNROLL(8)
      for (int t = 0; t < T; ++t) {
        macc[i][t] = _mm256_fmadd_ps(mins, _mm256_loadu_ps(a.x[t].ds + 8 * sb), macc[i][t]);
      }
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < T; ++t) a.y[t][i] = HSum(acc[i][t]) - HSum(macc[i][t]);
  }
}

// Q6_K: 6-bit values minus 32 with an int8 scale per 16 elements, applied to the int16 weights
// (|w * scale| <= 4096).
template <int R, int T>
void TileQ6_K(const TileArgs& a) {
  __m256 acc[R][T];
  Zero(acc);
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i high2 = _mm256_set1_epi8(0x30);
  const __m256i bias = _mm256_set1_epi8(32);
  const int64_t nsb = a.nb / 8;
  for (int64_t sb = 0; sb < nsb; ++sb) {
    HWY_UNROLL(4)
    for (int i = 0; i < R; ++i) {
      const uint8_t* blk = a.w0 + i * a.row_bytes + sb * 210;
      const float d = HalfToFloat(blk + 208);
      const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
      HWY_UNROLL(2)
      for (int h = 0; h < 2; ++h) {
        const auto* ql = reinterpret_cast<const __m256i*>(blk + 64 * h);
        const __m256i ql0 = _mm256_loadu_si256(ql);
        const __m256i ql1 = _mm256_loadu_si256(ql + 1);
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 128 + 32 * h));
        const __m256i q[4] = {_mm256_or_si256(_mm256_and_si256(ql0, low4),
                                              _mm256_and_si256(_mm256_slli_epi16(qh, 4), high2)),
                              _mm256_or_si256(_mm256_and_si256(ql1, low4),
                                              _mm256_and_si256(_mm256_slli_epi16(qh, 2), high2)),
                              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                                              _mm256_and_si256(qh, high2)),
                              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                              _mm256_and_si256(_mm256_srli_epi16(qh, 2), high2))};
        HWY_UNROLL(4)
        for (int k = 0; k < 4; ++k) {
          const int j = 4 * h + k;  // 32-element block within the super-block
          __m256i lo, hi;
          Widen(_mm256_sub_epi8(q[k], bias), &lo, &hi);
          lo = _mm256_mullo_epi16(lo, _mm256_set1_epi16(sc[2 * j]));
          hi = _mm256_mullo_epi16(hi, _mm256_set1_epi16(sc[2 * j + 1]));
          const int64_t b = 8 * sb + j;
          HWY_UNROLL(8)
          for (int t = 0; t < T; ++t) {
            acc[i][t] = Fma(BlockDot(lo, hi, a.x[t], b), d * a.x[t].d[b], acc[i][t]);
          }
        }
      }
    }
  }
  Store(a, acc);
}

#else
// ------------------------------------------------------------------ portable targets

template <int R, int T>
void Finish(const TileArgs& a, const float (&acc)[R][T], const float (&macc)[R][T]) {
  for (int i = 0; i < R; ++i) {
    for (int t = 0; t < T; ++t) a.y[t][i] = acc[i][t] - macc[i][t];
  }
}

HWY_INLINE int32_t BlockDot(const int32_t* w, const int16_t* x) {
  int32_t dot = 0;
  for (int l = 0; l < 32; ++l) dot += w[l] * x[l];
  return dot;
}

template <int R, int T>
void TileQ4_0(const TileArgs& a) {
  float acc[R][T] = {}, macc[R][T] = {};
  for (int i = 0; i < R; ++i) {
    for (int64_t b = 0; b < a.nb; ++b) {
      const uint8_t* blk = a.w0 + i * a.row_bytes + b * 18;
      int32_t w[32];
      for (int l = 0; l < 16; ++l) {
        w[l] = int32_t(blk[2 + l] & 15) - 8;
        w[16 + l] = int32_t(blk[2 + l] >> 4) - 8;
      }
      const float dw = HalfToFloat(blk);
      for (int t = 0; t < T; ++t) {
        acc[i][t] += dw * a.x[t].d[b] * float(BlockDot(w, a.x[t].q + b * kXBlock));
      }
    }
  }
  Finish(a, acc, macc);
}

template <int R, int T>
void TileQ8_0(const TileArgs& a) {
  float acc[R][T] = {}, macc[R][T] = {};
  for (int i = 0; i < R; ++i) {
    for (int64_t b = 0; b < a.nb; ++b) {
      const uint8_t* blk = a.w0 + i * a.row_bytes + b * 34;
      int32_t w[32];
      for (int l = 0; l < 32; ++l) w[l] = int8_t(blk[2 + l]);
      const float dw = HalfToFloat(blk);
      for (int t = 0; t < T; ++t) {
        acc[i][t] += dw * a.x[t].d[b] * float(BlockDot(w, a.x[t].q + b * kXBlock));
      }
    }
  }
  Finish(a, acc, macc);
}

template <bool kHigh, int R, int T>
void TileK45(const TileArgs& a) {
  constexpr int64_t kBytes = kHigh ? 176 : 144;
  float acc[R][T] = {}, macc[R][T] = {};
  for (int i = 0; i < R; ++i) {
    for (int64_t sb = 0; sb < a.nb / 8; ++sb) {
      const uint8_t* blk = a.w0 + i * a.row_bytes + sb * kBytes;
      float dsc[8], dmn[8];
      KScales(blk, dsc, dmn);
      const uint8_t* qh = blk + 16;
      const uint8_t* qs = blk + (kHigh ? 48 : 16);
      for (int j = 0; j < 8; ++j) {
        const int64_t b = 8 * sb + j;
        const uint8_t* q = qs + 32 * (j / 2);
        int32_t u[32];
        for (int l = 0; l < 32; ++l) {
          u[l] = (j % 2 == 0) ? (q[l] & 15) : (q[l] >> 4);
          if (kHigh) u[l] += ((qh[l] >> j) & 1) << 4;
        }
        for (int t = 0; t < T; ++t) {
          acc[i][t] += dsc[j] * a.x[t].d[b] * float(BlockDot(u, a.x[t].q + b * kXBlock));
          macc[i][t] += dmn[j] * a.x[t].ds[b];
        }
      }
    }
  }
  Finish(a, acc, macc);
}

template <int R, int T>
void TileQ6_K(const TileArgs& a) {
  float acc[R][T] = {}, macc[R][T] = {};
  for (int i = 0; i < R; ++i) {
    for (int64_t sb = 0; sb < a.nb / 8; ++sb) {
      const uint8_t* blk = a.w0 + i * a.row_bytes + sb * 210;
      const float d = HalfToFloat(blk + 208);
      const auto* sc = reinterpret_cast<const int8_t*>(blk + 192);
      for (int j = 0; j < 8; ++j) {
        const int h = j / 4, k = j % 4;
        const uint8_t* ql = blk + 64 * h + 32 * (k % 2);
        const uint8_t* qh = blk + 128 + 32 * h;
        int32_t w[32];
        for (int l = 0; l < 32; ++l) {
          const int lo = (k < 2) ? (ql[l] & 15) : (ql[l] >> 4);
          w[l] = ((lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32) * sc[2 * j + l / 16];
        }
        const int64_t b = 8 * sb + j;
        for (int t = 0; t < T; ++t) {
          acc[i][t] += d * a.x[t].d[b] * float(BlockDot(w, a.x[t].q + b * kXBlock));
        }
      }
    }
  }
  Finish(a, acc, macc);
}

#endif  // x86 / portable

// ------------------------------------------------------------------ driver

template <int R, int T>
HWY_INLINE void Tile(TensorType type, const TileArgs& a) {
  switch (type) {
    case TensorType::Q4_0:
      return TileQ4_0<R, T>(a);
    case TensorType::Q8_0:
      return TileQ8_0<R, T>(a);
    case TensorType::Q4_K:
      return TileK45<false, R, T>(a);
    case TensorType::Q5_K:
      return TileK45<true, R, T>(a);
    case TensorType::Q6_K:
      return TileQ6_K<R, T>(a);
    default:
      return;
  }
}

// Rows per tile for T tokens: enough independent rows to hide latency, few enough accumulators
// for the register file.
constexpr int TileRows(int T) {
  return T == 1 ? 4 : (T <= 4 ? 2 : 1);
}

struct PassContext {
  const Matrix* w;
  TileArgs args;  // x and y of the pass's tokens; w0 set per tile
  int n_tokens;
  detail::RowQueue rows;
};

template <int T>
void RunRows(const PassContext& ctx, int64_t begin, int64_t end) {
  constexpr int R = TileRows(T);
  TileArgs a = ctx.args;
  const auto* base = static_cast<const uint8_t*>(ctx.w->data);
  int64_t r = begin;
  for (; r + R <= end; r += R) {
    a.w0 = base + r * a.row_bytes;
    for (int t = 0; t < T; ++t) a.y[t] = ctx.args.y[t] + r;
    Tile<R, T>(ctx.w->type, a);
  }
  for (; r < end; ++r) {
    a.w0 = base + r * a.row_bytes;
    for (int t = 0; t < T; ++t) a.y[t] = ctx.args.y[t] + r;
    Tile<1, T>(ctx.w->type, a);
  }
}

void RunPass(PassContext* ctx) {
  int64_t begin, end;
  while (ctx->rows.take(&begin, &end)) {
    switch (ctx->n_tokens) {
      case 1:
        RunRows<1>(*ctx, begin, end);
        break;
      case 2:
        RunRows<2>(*ctx, begin, end);
        break;
      case 3:
        RunRows<3>(*ctx, begin, end);
        break;
      case 4:
        RunRows<4>(*ctx, begin, end);
        break;
      case 5:
        RunRows<5>(*ctx, begin, end);
        break;
      case 6:
        RunRows<6>(*ctx, begin, end);
        break;
      case 7:
        RunRows<7>(*ctx, begin, end);
        break;
      default:
        RunRows<8>(*ctx, begin, end);
        break;
    }
  }
}

thread_local detail::ByteScratch t_activations;  // owned by the calling thread

void GemvI16Impl(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
                 int64_t ldy, ThreadPool& pool) {
  const int64_t act_bytes = detail::act_row_bytes(w.cols);
  uint8_t* acts = t_activations.get(size_t(act_bytes * n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) {
    QuantizeActivations(x + t * ldx, w.cols, acts + t * act_bytes);
  }
  const double work = double(w.rows) * double(w.cols);
  const int threads = work < 65536.0 ? 1 : pool.size();
  for (int64_t t0 = 0; t0 < n_tokens; t0 += detail::kMaxTile) {
    PassContext ctx;
    ctx.w = &w;
    ctx.n_tokens = int(std::min<int64_t>(detail::kMaxTile, n_tokens - t0));
    ctx.args.w0 = nullptr;
    ctx.args.row_bytes = w.row_bytes;
    ctx.args.nb = w.cols / kXBlock;
    for (int t = 0; t < ctx.n_tokens; ++t) {
      ctx.args.x[t] = detail::act_row(acts + (t0 + t) * act_bytes, w.cols);
      ctx.args.y[t] = y + (t0 + t) * ldy;
    }
    ctx.rows.total = w.rows;
    // Several chunks per thread (multiples of 4 rows) for load balance.
    const int64_t chunk = (w.rows + 8 * threads - 1) / (8 * threads);
    ctx.rows.chunk = std::max<int64_t>(16, (chunk + 3) / 4 * 4);
    PassContext* c = &ctx;
    if (threads == 1) {
      RunPass(c);
    } else {
      pool.run([c](int) HWY_ATTR { RunPass(c); });
    }
  }
}

}  // namespace ug::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ug::kernels::detail {

HWY_EXPORT(GemvI16Impl);

bool gemv_i16_supports(TensorType type) {
  switch (type) {
    case TensorType::Q8_0:
    case TensorType::Q4_0:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
      return true;
    default:
      return false;
  }
}

void gemv_i16(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
              ThreadPool& pool) {
  HWY_DYNAMIC_DISPATCH(GemvI16Impl)(w, x, ldx, n_tokens, y, ldy, pool);
}

}  // namespace ug::kernels::detail
#endif  // HWY_ONCE
