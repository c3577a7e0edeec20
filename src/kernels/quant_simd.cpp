// SIMD kernels on weight rows of every supported TensorType: dequantize, dot, axpy and matmul.
// Compiled once per Highway target (foreach_target.h) and picked at runtime.
//
// Each type has a codec whose Decode() turns one block into fp32 vectors and hands them to a
// "sink" (store, FMA against activations, ...). The vectors are computed exactly as ggml's scalar
// dequantization does (same operations, same order, no fused multiply-add), so every path sees
// the same fp32 weights; only the accumulation order of the dot products differs.
//
// matmul has two strategies:
//  * decode (few tokens): memory-bound matrix-vector product. Each weight row is streamed once,
//    decoded in registers and multiplied into the accumulators of every token; four rows at a
//    time so four independent load streams and FMA chains are in flight.
//  * prefill (many tokens): compute-bound. A block of weight rows is dequantized once per
//    256-column slice into an fp32 panel laid out [k][rows] (transposed in registers), the
//    activations are packed [k][tokens], and a register-blocked kernel accumulates a
//    (2 vectors of rows) x (NR tokens) tile with broadcast-FMA, BLIS style.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma clang fp contract(off)
#endif

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

#include "kernels/gemv_i16.h"
#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"
#include "util/error.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/quant_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/aligned_allocator.h"
#include "hwy/highway.h"

#ifndef UG_KERNELS_QUANT_SIMD_SHARED_
#define UG_KERNELS_QUANT_SIMD_SHARED_
namespace ug::kernels::detail {

// Grow-only, 64-byte aligned float buffer. One per thread (thread_local): after warm-up the hot
// path never allocates.
struct FloatScratch {
  hwy::AlignedFreeUniquePtr<float[]> data;
  size_t capacity = 0;
  float* get(size_t n) {
    if (n > capacity) {
      data = hwy::AllocateAligned<float>(n);
      if (!data) throw std::bad_alloc();
      capacity = n;
    }
    return data.get();
  }
};

// Hands out [begin, end) ranges of `chunk` items to whichever thread asks next, so a thread that
// was descheduled (the machine may be shared) does not hold up the others.
struct WorkQueue {
  std::atomic<int64_t> next{0};
  int64_t total = 0;
  int64_t chunk = 1;
  bool take(int64_t* begin, int64_t* end) {
    const int64_t b = next.fetch_add(chunk, std::memory_order_relaxed);
    if (b >= total) return false;
    *begin = b;
    *end = std::min(total, b + chunk);
    return true;
  }
};

}  // namespace ug::kernels::detail
#endif  // UG_KERNELS_QUANT_SIMD_SHARED_

HWY_BEFORE_NAMESPACE();
namespace ug::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Blocks hold 16 or 32 values per vector-sized chunk; capping at 16 lanes keeps every vector
// inside one ggml sub-block on any target.
using DF = hn::CappedTag<float, 16>;
using VF = hn::Vec<DF>;
using DI = hn::RebindToSigned<DF>;
using DU = hn::RebindToUnsigned<DF>;
using VI = hn::Vec<DI>;
constexpr size_t kN = hn::MaxLanes(DF());

// Sanitizer builds define UG_NO_FLATTEN: flattening every codec into each kernel makes functions so
// large that gcc's ASan pass takes over half an hour on this file.
#ifdef UG_NO_FLATTEN
#define UG_FLATTEN
#else
#define UG_FLATTEN __attribute__((flatten))
#endif

// ------------------------------------------------------------------ scalar/vector helpers

HWY_INLINE float LoadF16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  return _cvtsh_ss(bits);
#else
  return fp16_to_fp32(bits);
#endif
}

// kN halves at p -> fp32. Highway's fallback for targets without F16C turns inf/NaN into finite
// numbers, so those targets use an exact bit-level conversion instead.
HWY_INLINE VF F16ToF32(const uint8_t* p) {
  const DF df;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  const hn::Rebind<hwy::float16_t, DF> dh;
  return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
#else
  const DU du;
  const DI di;
  const hn::Rebind<uint16_t, DF> du16;
  const auto bits = hn::PromoteTo(du, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p)));
  const auto sign = hn::ShiftLeft<16>(hn::And(bits, hn::Set(du, 0x8000u)));
  const auto exponent = hn::And(hn::ShiftRight<10>(bits), hn::Set(du, 0x1Fu));
  const auto mantissa = hn::And(bits, hn::Set(du, 0x3FFu));
  const auto normal =
      hn::Or(hn::ShiftLeft<23>(hn::Add(exponent, hn::Set(du, 112u))), hn::ShiftLeft<13>(mantissa));
  const auto inf_nan = hn::Or(hn::Set(du, 0x7F800000u), hn::ShiftLeft<13>(mantissa));
  const auto subnormal = hn::BitCast(
      du, hn::Mul(hn::ConvertTo(df, hn::BitCast(di, mantissa)), hn::Set(df, 1.0f / 16777216.0f)));
  auto r = hn::IfThenElse(hn::Eq(exponent, hn::Set(du, 0x1Fu)), inf_nan, normal);
  r = hn::IfThenElse(hn::Eq(exponent, hn::Zero(du)), subnormal, r);
  return hn::BitCast(df, hn::Or(r, sign));
#endif
}

// kN bytes -> int32 lanes.
HWY_INLINE VI LoadU8(const uint8_t* p) {
  const DI di;
  const hn::Rebind<uint8_t, DF> du8;
  return hn::PromoteTo(di, hn::LoadU(du8, p));
}
HWY_INLINE VI LoadI8(const uint8_t* p) {
  const DI di;
  const hn::Rebind<int8_t, DF> di8;
  return hn::PromoteTo(di, hn::LoadU(di8, reinterpret_cast<const int8_t*>(p)));
}

// ------------------------------------------------------------------ codecs
// Decode(blk, sink) calls sink(offset, v) for every kN-element chunk of the block (offsets are
// compile-time constants after unrolling). Float types use 16-element "blocks" with a scalar tail.

struct CodecF32 {
  static constexpr int64_t kBlockElems = 16;
  static constexpr int64_t kBlockBytes = 64;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* blk, Sink& sink) {
    const DF df;
    const float* p = reinterpret_cast<const float*>(blk);
    HWY_UNROLL(16)
    for (size_t j = 0; j < 16; j += kN) sink(j, hn::LoadU(df, p + j));
  }
  static float Scalar(const uint8_t* row, int64_t i) {
    float v;
    std::memcpy(&v, row + 4 * i, 4);
    return v;
  }
};

struct CodecF16 {
  static constexpr int64_t kBlockElems = 16;
  static constexpr int64_t kBlockBytes = 32;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* blk, Sink& sink) {
    HWY_UNROLL(16)
    for (size_t j = 0; j < 16; j += kN) sink(j, F16ToF32(blk + 2 * j));
  }
  static float Scalar(const uint8_t* row, int64_t i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    return fp16_to_fp32(h);
  }
};

struct CodecBF16 {
  static constexpr int64_t kBlockElems = 16;
  static constexpr int64_t kBlockBytes = 32;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* blk, Sink& sink) {
    const DF df;
    const DU du;
    const hn::Rebind<uint16_t, DF> du16;
    HWY_UNROLL(16)
    for (size_t j = 0; j < 16; j += kN) {
      const auto bits =
          hn::PromoteTo(du, hn::LoadU(du16, reinterpret_cast<const uint16_t*>(blk + 2 * j)));
      sink(j, hn::BitCast(df, hn::ShiftLeft<16>(bits)));
    }
  }
  static float Scalar(const uint8_t* row, int64_t i) {
    uint16_t h;
    std::memcpy(&h, row + 2 * i, 2);
    return bf16_to_fp32(h);
  }
};

struct CodecQ8_0 {
  static constexpr int64_t kBlockElems = 32;
  static constexpr int64_t kBlockBytes = 34;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* blk, Sink& sink) {
    const DF df;
    const VF d = hn::Set(df, LoadF16(blk));
    HWY_UNROLL(32)
    for (size_t j = 0; j < 32; j += kN) {
      sink(j, hn::Mul(hn::ConvertTo(df, LoadI8(blk + 2 + j)), d));
    }
  }
  static float Scalar(const uint8_t*, int64_t) { return 0.0f; }  // rows are whole blocks
};

struct CodecQ4_0 {
  static constexpr int64_t kBlockElems = 32;
  static constexpr int64_t kBlockBytes = 18;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* blk, Sink& sink) {
    const DF df;
    const DI di;
    const VF d = hn::Set(df, LoadF16(blk));
    const VI mask = hn::Set(di, 0x0F);
    const VI eight = hn::Set(di, 8);
    HWY_UNROLL(16)
    for (size_t j = 0; j < 16; j += kN) {
      const VI q = LoadU8(blk + 2 + j);
      sink(j, hn::Mul(hn::ConvertTo(df, hn::Sub(hn::And(q, mask), eight)), d));
      sink(16 + j, hn::Mul(hn::ConvertTo(df, hn::Sub(hn::ShiftRight<4>(q), eight)), d));
    }
  }
  static float Scalar(const uint8_t*, int64_t) { return 0.0f; }
};

struct CodecQ4_K {
  static constexpr int64_t kBlockElems = 256;
  static constexpr int64_t kBlockBytes = 144;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* blk, Sink& sink) {
    const DF df;
    const DI di;
    const float d = LoadF16(blk);
    const float dmin = LoadF16(blk + 2);
    const uint8_t* scales = blk + 4;
    const uint8_t* qs = blk + 16;
    const VI mask = hn::Set(di, 0x0F);
    HWY_UNROLL(4)
    for (int pair = 0; pair < 4; ++pair) {
      uint8_t sc, m;
      blocks::scale_min_k4(2 * pair, scales, &sc, &m);
      const VF d1 = hn::Set(df, d * float(sc));
      const VF m1 = hn::Set(df, dmin * float(m));
      blocks::scale_min_k4(2 * pair + 1, scales, &sc, &m);
      const VF d2 = hn::Set(df, d * float(sc));
      const VF m2 = hn::Set(df, dmin * float(m));
      const uint8_t* q = qs + 32 * pair;
      HWY_UNROLL(32)
      for (size_t j = 0; j < 32; j += kN) {
        const VI b = LoadU8(q + j);
        sink(64 * pair + j, hn::Sub(hn::Mul(d1, hn::ConvertTo(df, hn::And(b, mask))), m1));
        sink(64 * pair + 32 + j, hn::Sub(hn::Mul(d2, hn::ConvertTo(df, hn::ShiftRight<4>(b))), m2));
      }
    }
  }
  static float Scalar(const uint8_t*, int64_t) { return 0.0f; }
};

struct CodecQ5_K {
  static constexpr int64_t kBlockElems = 256;
  static constexpr int64_t kBlockBytes = 176;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* blk, Sink& sink) {
    const DF df;
    const DI di;
    const float d = LoadF16(blk);
    const float dmin = LoadF16(blk + 2);
    const uint8_t* scales = blk + 4;
    const uint8_t* qh = blk + 16;
    const uint8_t* qs = blk + 48;
    const VI mask = hn::Set(di, 0x0F);
    const VI bit4 = hn::Set(di, 0x10);
    HWY_UNROLL(4)
    for (int pair = 0; pair < 4; ++pair) {
      uint8_t sc, m;
      blocks::scale_min_k4(2 * pair, scales, &sc, &m);
      const VF d1 = hn::Set(df, d * float(sc));
      const VF m1 = hn::Set(df, dmin * float(m));
      blocks::scale_min_k4(2 * pair + 1, scales, &sc, &m);
      const VF d2 = hn::Set(df, d * float(sc));
      const VF m2 = hn::Set(df, dmin * float(m));
      const uint8_t* q = qs + 32 * pair;
      HWY_UNROLL(32)
      for (size_t j = 0; j < 32; j += kN) {
        const VI b = LoadU8(q + j);
        // Fifth bit of the low-nibble half is bit 2*pair of qh, of the high half bit 2*pair+1.
        const VI h = hn::ShiftRightSame(LoadU8(qh + j), 2 * pair);
        const VI h1 = hn::And(hn::ShiftLeft<4>(h), bit4);
        const VI h2 = hn::And(hn::ShiftLeft<3>(h), bit4);
        const VI lo = hn::Add(hn::And(b, mask), h1);
        const VI hi = hn::Add(hn::ShiftRight<4>(b), h2);
        sink(64 * pair + j, hn::Sub(hn::Mul(d1, hn::ConvertTo(df, lo)), m1));
        sink(64 * pair + 32 + j, hn::Sub(hn::Mul(d2, hn::ConvertTo(df, hi)), m2));
      }
    }
  }
  static float Scalar(const uint8_t*, int64_t) { return 0.0f; }
};

struct CodecQ6_K {
  static constexpr int64_t kBlockElems = 256;
  static constexpr int64_t kBlockBytes = 210;
  template <class Sink>
  static HWY_INLINE void Decode(const uint8_t* blk, Sink& sink) {
    const DF df;
    const DI di;
    const float d = LoadF16(blk + 208);
    const auto* scales = reinterpret_cast<const int8_t*>(blk + 192);
    const VI mask = hn::Set(di, 0x0F);
    const VI high = hn::Set(di, 0x30);
    const VI bias = hn::Set(di, 32);
    HWY_UNROLL(2)
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = blk + 64 * half;
      const uint8_t* qh = blk + 128 + 32 * half;
      const int8_t* sc = scales + 8 * half;
      HWY_UNROLL(32)
      for (size_t l = 0; l < 32; l += kN) {
        const size_t is = l / 16;
        const VI a = LoadU8(ql + l);
        const VI b = LoadU8(ql + 32 + l);
        const VI h = LoadU8(qh + l);
        const VI q1 = hn::Sub(hn::Or(hn::And(a, mask), hn::And(hn::ShiftLeft<4>(h), high)), bias);
        const VI q2 = hn::Sub(hn::Or(hn::And(b, mask), hn::And(hn::ShiftLeft<2>(h), high)), bias);
        const VI q3 = hn::Sub(hn::Or(hn::ShiftRight<4>(a), hn::And(h, high)), bias);
        const VI q4 =
            hn::Sub(hn::Or(hn::ShiftRight<4>(b), hn::And(hn::ShiftRight<2>(h), high)), bias);
        const size_t base = 128 * size_t(half) + l;
        sink(base, hn::Mul(hn::Set(df, d * float(sc[is + 0])), hn::ConvertTo(df, q1)));
        sink(base + 32, hn::Mul(hn::Set(df, d * float(sc[is + 2])), hn::ConvertTo(df, q2)));
        sink(base + 64, hn::Mul(hn::Set(df, d * float(sc[is + 4])), hn::ConvertTo(df, q3)));
        sink(base + 96, hn::Mul(hn::Set(df, d * float(sc[is + 6])), hn::ConvertTo(df, q4)));
      }
    }
  }
  static float Scalar(const uint8_t*, int64_t) { return 0.0f; }
};

// Calls fn(Codec()) for the codec of `type` (the caller has validated the type).
template <class Fn>
HWY_INLINE void WithCodec(TensorType type, const Fn& fn) {
  switch (type) {
    case TensorType::F32:
      return fn(CodecF32());
    case TensorType::F16:
      return fn(CodecF16());
    case TensorType::BF16:
      return fn(CodecBF16());
    case TensorType::Q8_0:
      return fn(CodecQ8_0());
    case TensorType::Q4_0:
      return fn(CodecQ4_0());
    case TensorType::Q4_K:
      return fn(CodecQ4_K());
    case TensorType::Q5_K:
      return fn(CodecQ5_K());
    case TensorType::Q6_K:
      return fn(CodecQ6_K());
    default:
      return;
  }
}

// ------------------------------------------------------------------ row kernels

// Decodes elements [first, first + count) of a row; `first` is a multiple of the block size.
template <class Codec>
UG_FLATTEN void DequantRange(const uint8_t* row, int64_t first, int64_t count, float* dst) {
  const DF df;
  constexpr int64_t BE = Codec::kBlockElems;
  const int64_t full = count / BE;
  const uint8_t* p = row + first / BE * Codec::kBlockBytes;
  for (int64_t b = 0; b < full; ++b) {
    float* out = dst + b * BE;
    auto store = [&](size_t off, VF v) HWY_ATTR { hn::StoreU(v, df, out + off); };
    Codec::Decode(p + b * Codec::kBlockBytes, store);
  }
  for (int64_t i = full * BE; i < count; ++i) dst[i] = Codec::Scalar(row, first + i);
}

template <class Codec>
UG_FLATTEN float DotRowT(const uint8_t* row, const float* x, int64_t n) {
  const DF df;
  constexpr int64_t BE = Codec::kBlockElems;
  constexpr int64_t BB = Codec::kBlockBytes;
  const int64_t full = n / BE;
  // Two accumulators fed by alternate blocks so consecutive FMAs do not wait on each other.
  VF acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int64_t b = 0;
  for (; b + 2 <= full; b += 2) {
    const float* xb = x + b * BE;
    auto fma0 = [&](size_t off, VF v)
                    HWY_ATTR { acc0 = hn::MulAdd(v, hn::LoadU(df, xb + off), acc0); };
    auto fma1 = [&](size_t off, VF v)
                    HWY_ATTR { acc1 = hn::MulAdd(v, hn::LoadU(df, xb + BE + off), acc1); };
    Codec::Decode(row + b * BB, fma0);
    Codec::Decode(row + (b + 1) * BB, fma1);
  }
  if (b < full) {
    const float* xb = x + b * BE;
    auto fma0 = [&](size_t off, VF v)
                    HWY_ATTR { acc0 = hn::MulAdd(v, hn::LoadU(df, xb + off), acc0); };
    Codec::Decode(row + b * BB, fma0);
  }
  float tail = 0.0f;
  for (int64_t i = full * BE; i < n; ++i) tail += Codec::Scalar(row, i) * x[i];
  return hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1))) + tail;
}

template <class Codec>
UG_FLATTEN void AxpyRowT(const uint8_t* row, float a, float* y, int64_t n) {
  const DF df;
  constexpr int64_t BE = Codec::kBlockElems;
  const int64_t full = n / BE;
  const VF va = hn::Set(df, a);
  for (int64_t b = 0; b < full; ++b) {
    float* yb = y + b * BE;
    auto fma = [&](size_t off, VF v) HWY_ATTR {
      hn::StoreU(hn::MulAdd(va, v, hn::LoadU(df, yb + off)), df, yb + off);
    };
    Codec::Decode(row + b * Codec::kBlockBytes, fma);
  }
  for (int64_t i = full * BE; i < n; ++i) y[i] += a * Codec::Scalar(row, i);
}

void DequantizeRowImpl(TensorType type, const uint8_t* src, float* dst, int64_t n) {
  WithCodec(type, [&](auto codec) HWY_ATTR { DequantRange<decltype(codec)>(src, 0, n, dst); });
}

float DotRowImpl(TensorType type, const uint8_t* row, const float* x, int64_t n) {
  float result = 0.0f;
  WithCodec(type, [&](auto codec) HWY_ATTR { result = DotRowT<decltype(codec)>(row, x, n); });
  return result;
}

void AxpyRowImpl(TensorType type, const uint8_t* row, float a, float* y, int64_t n) {
  WithCodec(type, [&](auto codec) HWY_ATTR { AxpyRowT<decltype(codec)>(row, a, y, n); });
}

// ------------------------------------------------------------------ decode: matrix x few vectors

// y[t * ldy + i] = dot(row i, x_t) for R consecutive rows starting at w0 and T tokens.
template <class Codec, int R, int T>
UG_FLATTEN void GemvTile(const uint8_t* w0, int64_t row_bytes, int64_t cols, const float* x,
                         int64_t ldx, float* y, int64_t ldy) {
  const DF df;
  constexpr int64_t BE = Codec::kBlockElems;
  constexpr int64_t BB = Codec::kBlockBytes;
  VF acc[R][T];
  HWY_UNROLL(4)
  for (int i = 0; i < R; ++i) {
    HWY_UNROLL(4)
    for (int t = 0; t < T; ++t) acc[i][t] = hn::Zero(df);
  }
  const int64_t nb = cols / BE;
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * BE;
    HWY_UNROLL(4)
    for (int i = 0; i < R; ++i) {
      auto fma = [&](size_t off, VF v) HWY_ATTR {
        HWY_UNROLL(4)
        for (int t = 0; t < T; ++t) {
          acc[i][t] = hn::MulAdd(v, hn::LoadU(df, xb + t * ldx + off), acc[i][t]);
        }
      };
      Codec::Decode(w0 + i * row_bytes + b * BB, fma);
    }
  }
  HWY_UNROLL(4)
  for (int i = 0; i < R; ++i) {
    HWY_UNROLL(4)
    for (int t = 0; t < T; ++t) {
      float tail = 0.0f;
      for (int64_t c = nb * BE; c < cols; ++c) {
        tail += Codec::Scalar(w0 + i * row_bytes, c) * x[t * ldx + c];
      }
      y[t * ldy + i] = hn::GetLane(hn::SumOfLanes(df, acc[i][t])) + tail;
    }
  }
}

template <class Codec, int T>
void GemvRows(const Matrix& w, int64_t r_begin, int64_t r_end, const float* x, int64_t ldx,
              float* y, int64_t ldy) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  constexpr int R = 4;
  int64_t r = r_begin;
  for (; r + R <= r_end; r += R) {
    GemvTile<Codec, R, T>(base + r * w.row_bytes, w.row_bytes, w.cols, x, ldx, y + r, ldy);
  }
  for (; r < r_end; ++r) {
    for (int t = 0; t < T; ++t) {
      y[t * ldy + r] = DotRowT<Codec>(base + r * w.row_bytes, x + t * ldx, w.cols);
    }
  }
}

constexpr int64_t kMaxGemvTokens = 3;

struct GemvContext {
  const Matrix* w;
  const float* x;
  int64_t ldx;
  int64_t n_tokens;
  float* y;
  int64_t ldy;
  detail::WorkQueue rows;
};

template <class Codec>
void GemvWorker(GemvContext* ctx) {
  int64_t begin, end;
  while (ctx->rows.take(&begin, &end)) {
    switch (ctx->n_tokens) {
      case 1:
        GemvRows<Codec, 1>(*ctx->w, begin, end, ctx->x, ctx->ldx, ctx->y, ctx->ldy);
        break;
      case 2:
        GemvRows<Codec, 2>(*ctx->w, begin, end, ctx->x, ctx->ldx, ctx->y, ctx->ldy);
        break;
      default:
        GemvRows<Codec, 3>(*ctx->w, begin, end, ctx->x, ctx->ldx, ctx->y, ctx->ldy);
        break;
    }
  }
}

// Rows [begin, end) for any number of tokens, each token's value computed exactly as GemvRows<..,
// 1> computes it: same 4-row tiles (tails by DotRowT), same per-(row, token) accumulation order.
// The tile's weight rows are decoded once per group of up to 4 tokens while they sit in L1, so the
// weights stream from memory once for the whole batch.
template <class Codec>
void GemvRowsBatched(const Matrix& w, int64_t r_begin, int64_t r_end, const float* x, int64_t ldx,
                     int64_t n_tokens, float* y, int64_t ldy) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  constexpr int R = 4;
  int64_t r = r_begin;
  for (; r + R <= r_end; r += R) {
    const uint8_t* w0 = base + r * w.row_bytes;
    int64_t t = 0;
    // Four tokens at a time as two 2-row tiles (2 x 4 accumulators fit 16 registers); a
    // (row, token) accumulator sees the same operations whatever the tile shape.
    for (; t + 4 <= n_tokens; t += 4) {
      GemvTile<Codec, 2, 4>(w0, w.row_bytes, w.cols, x + t * ldx, ldx, y + t * ldy + r, ldy);
      GemvTile<Codec, 2, 4>(w0 + 2 * w.row_bytes, w.row_bytes, w.cols, x + t * ldx, ldx,
                            y + t * ldy + r + 2, ldy);
    }
    if (n_tokens - t == 3) {
      GemvTile<Codec, R, 3>(w0, w.row_bytes, w.cols, x + t * ldx, ldx, y + t * ldy + r, ldy);
    } else if (n_tokens - t == 2) {
      GemvTile<Codec, R, 2>(w0, w.row_bytes, w.cols, x + t * ldx, ldx, y + t * ldy + r, ldy);
    } else if (n_tokens - t == 1) {
      GemvTile<Codec, R, 1>(w0, w.row_bytes, w.cols, x + t * ldx, ldx, y + t * ldy + r, ldy);
    }
  }
  for (; r < r_end; ++r) {
    for (int64_t t = 0; t < n_tokens; ++t) {
      y[t * ldy + r] = DotRowT<Codec>(base + r * w.row_bytes, x + t * ldx, w.cols);
    }
  }
}

void MatmulRowwiseImpl(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
                       int64_t ldy, ThreadPool& pool) {
  WithCodec(w.type, [&](auto codec) HWY_ATTR {
    using Codec = decltype(codec);
    GemvContext ctx;
    ctx.w = &w;
    ctx.x = x;
    ctx.ldx = ldx;
    ctx.n_tokens = n_tokens;
    ctx.y = y;
    ctx.ldy = ldy;
    ctx.rows.total = w.rows;
    // Same row chunking as the decode path of matmul (chunks are multiples of 4 rows, so the
    // 4-row tiles, and with them every row's result, do not depend on it).
    const double work = double(w.rows) * double(w.cols);
    const int threads = work < 65536.0 ? 1 : pool.size();
    const int64_t chunk = (w.rows + 8 * threads - 1) / (8 * threads);
    ctx.rows.chunk = std::max<int64_t>(16, (chunk + 3) / 4 * 4);
    GemvContext* c = &ctx;
    auto worker = [c]() HWY_ATTR {
      int64_t begin, end;
      while (c->rows.take(&begin, &end)) {
        GemvRowsBatched<Codec>(*c->w, begin, end, c->x, c->ldx, c->n_tokens, c->y, c->ldy);
      }
    };
    if (threads == 1) {
      worker();
    } else {
      pool.run([&worker](int) HWY_ATTR { worker(); });
    }
  });
}

// ------------------------------------------------------------------ prefill: matrix x matrix

constexpr int64_t kMR = 2 * int64_t(kN);  // weight rows per micro-tile (two vectors)
// Tokens per micro-tile: 2*NR accumulators + 2 weight vectors + 1 broadcast must fit the
// register file (32 vector registers with AVX-512, 16 otherwise).
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr int64_t kNR = 12;
#elif HWY_TARGET == HWY_SCALAR || HWY_TARGET == HWY_EMU128
constexpr int64_t kNR = 4;
#else
constexpr int64_t kNR = 6;
#endif
constexpr int64_t kKC = 256;  // columns per slice: a multiple of every block size
constexpr int64_t kTokensPerPass = (512 / kNR) * kNR;

// Transposes a kN x kN tile: dst row c (stride ld_dst) = src column c (src rows stride ld_src).
template <class D>
HWY_INLINE void TransposeTile(D df, const float* src, int64_t ld_src, float* dst, int64_t ld_dst) {
  constexpr size_t N = hn::MaxLanes(D());
#if HWY_TARGET == HWY_SCALAR
  static_assert(N == 1);
  (void)df;
  (void)ld_src;
  (void)ld_dst;
  dst[0] = src[0];
#else
  {
    // 4x4 transposes inside every 128-bit block, then (for wider vectors) a transpose of blocks.
    const hn::Repartition<uint64_t, D> d64;
    hn::Vec<D> o[N / 4][4];
    HWY_UNROLL(4)
    for (size_t g = 0; g < N / 4; ++g) {
      const auto r0 = hn::LoadU(df, src + (4 * g + 0) * ld_src);
      const auto r1 = hn::LoadU(df, src + (4 * g + 1) * ld_src);
      const auto r2 = hn::LoadU(df, src + (4 * g + 2) * ld_src);
      const auto r3 = hn::LoadU(df, src + (4 * g + 3) * ld_src);
      const auto t0 = hn::BitCast(d64, hn::InterleaveLower(df, r0, r1));
      const auto t1 = hn::BitCast(d64, hn::InterleaveLower(df, r2, r3));
      const auto t2 = hn::BitCast(d64, hn::InterleaveUpper(df, r0, r1));
      const auto t3 = hn::BitCast(d64, hn::InterleaveUpper(df, r2, r3));
      o[g][0] = hn::BitCast(df, hn::InterleaveLower(d64, t0, t1));
      o[g][1] = hn::BitCast(df, hn::InterleaveUpper(d64, t0, t1));
      o[g][2] = hn::BitCast(df, hn::InterleaveLower(d64, t2, t3));
      o[g][3] = hn::BitCast(df, hn::InterleaveUpper(d64, t2, t3));
    }
    // o[g][i], 128-bit block j = column 4j+i of rows 4g..4g+3.
    HWY_UNROLL(4)
    for (size_t i = 0; i < 4; ++i) {
      if constexpr (N == 4) {
        hn::StoreU(o[0][i], df, dst + i * ld_dst);
      } else if constexpr (N == 8) {
        hn::StoreU(hn::ConcatLowerLower(df, o[1][i], o[0][i]), df, dst + i * ld_dst);
        hn::StoreU(hn::ConcatUpperUpper(df, o[1][i], o[0][i]), df, dst + (4 + i) * ld_dst);
      } else {
        static_assert(N == 16, "unsupported vector width");
        const auto p = hn::ConcatLowerLower(df, o[2][i], o[0][i]);  // blocks 0,1 of groups 0,2
        const auto r = hn::ConcatLowerLower(df, o[3][i], o[1][i]);  // blocks 0,1 of groups 1,3
        const auto q = hn::ConcatUpperUpper(df, o[2][i], o[0][i]);  // blocks 2,3 of groups 0,2
        const auto s = hn::ConcatUpperUpper(df, o[3][i], o[1][i]);  // blocks 2,3 of groups 1,3
        hn::StoreU(hn::OddEvenBlocks(hn::SwapAdjacentBlocks(r), p), df, dst + (0 + i) * ld_dst);
        hn::StoreU(hn::OddEvenBlocks(r, hn::SwapAdjacentBlocks(p)), df, dst + (4 + i) * ld_dst);
        hn::StoreU(hn::OddEvenBlocks(hn::SwapAdjacentBlocks(s), q), df, dst + (8 + i) * ld_dst);
        hn::StoreU(hn::OddEvenBlocks(s, hn::SwapAdjacentBlocks(q)), df, dst + (12 + i) * ld_dst);
      }
    }
  }
#endif
}

// C tile (kMR rows x kNR tokens) at c[t * ldc + r] (+)= sum_k wp[k][r] * xp[k][t].
// Partial tiles go through `edge` so nothing outside the valid rows/tokens is touched.
UG_FLATTEN void MicroKernel(const float* HWY_RESTRICT wp, const float* HWY_RESTRICT xp, int64_t kc,
                            float* c, int64_t ldc, bool accumulate, int64_t rows_valid,
                            int64_t tokens_valid, float* HWY_RESTRICT edge) {
  const DF df;
  const bool full = rows_valid == kMR && tokens_valid == kNR;
  float* cp = c;
  int64_t ld = ldc;
  if (!full) {
    cp = edge;
    ld = kMR;
    if (accumulate) {
      std::fill(edge, edge + kMR * kNR, 0.0f);
      for (int64_t t = 0; t < tokens_valid; ++t) {
        std::copy(c + t * ldc, c + t * ldc + rows_valid, edge + t * kMR);
      }
    }
  }
  VF a0[kNR], a1[kNR];
  HWY_UNROLL(kNR)
  for (int64_t t = 0; t < kNR; ++t) {
    a0[t] = accumulate ? hn::LoadU(df, cp + t * ld) : hn::Zero(df);
    a1[t] = accumulate ? hn::LoadU(df, cp + t * ld + kN) : hn::Zero(df);
  }
  for (int64_t k = 0; k < kc; ++k) {
    const VF w0 = hn::Load(df, wp + k * kMR);
    const VF w1 = hn::Load(df, wp + k * kMR + kN);
    const float* xk = xp + k * kNR;
    HWY_UNROLL(kNR)
    for (int64_t t = 0; t < kNR; ++t) {
      const VF b = hn::Set(df, xk[t]);
      a0[t] = hn::MulAdd(w0, b, a0[t]);
      a1[t] = hn::MulAdd(w1, b, a1[t]);
    }
  }
  HWY_UNROLL(kNR)
  for (int64_t t = 0; t < kNR; ++t) {
    hn::StoreU(a0[t], df, cp + t * ld);
    hn::StoreU(a1[t], df, cp + t * ld + kN);
  }
  if (!full) {
    for (int64_t t = 0; t < tokens_valid; ++t) {
      std::copy(edge + t * kMR, edge + t * kMR + rows_valid, c + t * ldc);
    }
  }
}

struct GemmContext {
  const Matrix* w;
  const float* x;
  int64_t ldx;
  float* y;
  int64_t ldy;
  int64_t token0;  // first token of this pass
  int64_t n_tok;   // tokens in this pass
  int64_t panels;  // ceil(n_tok / kNR)
  float* xp;       // packed activations: [panel][k][kNR]
  int64_t mc;      // weight rows per block (multiple of kMR)
  detail::WorkQueue blocks;
};

thread_local detail::FloatScratch t_gemm_scratch;   // per thread: tmp + wp + edge
thread_local detail::FloatScratch t_packed_tokens;  // owned by the calling thread

// Packs token panels [p_begin, p_end) of this pass: xp[p][k][t] = x[token0 + p*kNR + t][k].
void PackTokens(const GemmContext& ctx, int64_t p_begin, int64_t p_end) {
  const int64_t K = ctx.w->cols;
  for (int64_t p = p_begin; p < p_end; ++p) {
    float* panel = ctx.xp + p * K * kNR;
    for (int64_t t = 0; t < kNR; ++t) {
      const int64_t tok = p * kNR + t;
      if (tok < ctx.n_tok) {
        const float* src = ctx.x + (ctx.token0 + tok) * ctx.ldx;
        for (int64_t k = 0; k < K; ++k) panel[k * kNR + t] = src[k];
      } else {
        for (int64_t k = 0; k < K; ++k) panel[k * kNR + t] = 0.0f;
      }
    }
  }
}

template <class Codec>
void GemmBlock(const GemmContext& ctx, int64_t ic, float* scratch) {
  const DF df;
  const Matrix& w = *ctx.w;
  const int64_t K = w.cols;
  const int64_t M = w.rows;
  const int64_t rows = std::min(ctx.mc, M - ic);
  const int64_t micro = (rows + kMR - 1) / kMR;
  float* tmp = scratch;             // kMR x kKC, row-major
  float* wp = tmp + kMR * kKC;      // micro x [kKC][kMR]
  float* edge = wp + ctx.mc * kKC;  // kMR x kNR
  const auto* base = static_cast<const uint8_t*>(w.data);
  auto prefetch_slice = [&](int64_t first_col) {
    const int64_t bytes = std::min(kKC, K - first_col) / Codec::kBlockElems * Codec::kBlockBytes;
    const int64_t offset = first_col / Codec::kBlockElems * Codec::kBlockBytes;
    for (int64_t r = ic; r < ic + rows; ++r) {
      const uint8_t* p = base + r * w.row_bytes + offset;
      for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 2);
    }
  };
  for (int64_t pc = 0; pc < K; pc += kKC) {
    const int64_t kc = std::min(kKC, K - pc);
    const int64_t kc_pad = (kc + int64_t(kN) - 1) / int64_t(kN) * int64_t(kN);
    // The block reads a short slice of each of its rows, a pattern the hardware prefetchers
    // miss: fetch the next slice into L2 while this one is multiplied (and the first one up
    // front, so its misses overlap).
    if (pc == 0) prefetch_slice(0);
    if (pc + kKC < K) prefetch_slice(pc + kKC);
    for (int64_t m = 0; m < micro; ++m) {
      const int64_t r0 = ic + m * kMR;
      const int64_t valid = std::min(kMR, M - r0);
      for (int64_t i = 0; i < kMR; ++i) {
        float* dst = tmp + i * kKC;
        if (i < valid) {
          DequantRange<Codec>(base + (r0 + i) * w.row_bytes, pc, kc, dst);
          std::fill(dst + kc, dst + kc_pad, 0.0f);
        } else {
          std::fill(dst, dst + kc_pad, 0.0f);
        }
      }
      float* panel = wp + m * kKC * kMR;
      for (int64_t k = 0; k < kc_pad; k += int64_t(kN)) {
        TransposeTile(df, tmp + k, kKC, panel + k * kMR, kMR);
        TransposeTile(df, tmp + int64_t(kN) * kKC + k, kKC, panel + k * kMR + int64_t(kN), kMR);
      }
    }
    for (int64_t p = 0; p < ctx.panels; ++p) {
      const int64_t tokens = std::min(kNR, ctx.n_tok - p * kNR);
      const float* xpp = ctx.xp + p * K * kNR + pc * kNR;
      float* cp = ctx.y + (ctx.token0 + p * kNR) * ctx.ldy;
      for (int64_t m = 0; m < micro; ++m) {
        const int64_t r0 = ic + m * kMR;
        MicroKernel(wp + m * kKC * kMR, xpp, kc, cp + r0, ctx.ldy, pc > 0, std::min(kMR, M - r0),
                    tokens, edge);
      }
    }
  }
}

template <class Codec>
void Gemm(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
          ThreadPool& pool) {
  const int64_t K = w.cols;
  const int n_threads = pool.size();
  for (int64_t token0 = 0; token0 < n_tokens; token0 += kTokensPerPass) {
    GemmContext ctx;
    ctx.w = &w;
    ctx.x = x;
    ctx.ldx = ldx;
    ctx.y = y;
    ctx.ldy = ldy;
    ctx.token0 = token0;
    ctx.n_tok = std::min(kTokensPerPass, n_tokens - token0);
    ctx.panels = (ctx.n_tok + kNR - 1) / kNR;
    ctx.xp = t_packed_tokens.get(size_t(ctx.panels * K * kNR));
    // Keep the output tile of a row block (mc x tokens) around 256 KiB so it stays in L2 while
    // the K slices accumulate into it.
    const int64_t tile_rows = 65536 / (ctx.panels * kNR);
    ctx.mc =
        std::clamp<int64_t>(tile_rows / kMR * kMR, kMR, std::max<int64_t>(kMR, 256 / kMR * kMR));
    ctx.blocks.total = (w.rows + ctx.mc - 1) / ctx.mc;
    ctx.blocks.chunk = 1;

    GemmContext* c = &ctx;
    pool.run([c, n_threads](int tid) HWY_ATTR {
      const int64_t per = (c->panels + n_threads - 1) / n_threads;
      const int64_t b = std::min(c->panels, per * tid);
      PackTokens(*c, b, std::min(c->panels, b + per));
    });
    pool.run([c](int) HWY_ATTR {
      float* scratch = t_gemm_scratch.get(size_t(kMR * kKC + c->mc * kKC + kMR * kNR + 64));
      int64_t b, e;
      while (c->blocks.take(&b, &e)) GemmBlock<Codec>(*c, b * c->mc, scratch);
    });
  }
}

void MatmulImpl(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
                int64_t ldy, ThreadPool& pool) {
  WithCodec(w.type, [&](auto codec) HWY_ATTR {
    using Codec = decltype(codec);
    if (n_tokens <= kMaxGemvTokens) {
      GemvContext ctx;
      ctx.w = &w;
      ctx.x = x;
      ctx.ldx = ldx;
      ctx.n_tokens = n_tokens;
      ctx.y = y;
      ctx.ldy = ldy;
      ctx.rows.total = w.rows;
      const double work = double(w.rows) * double(w.cols) * double(n_tokens);
      const int threads = work < 65536.0 ? 1 : pool.size();
      // Several contiguous chunks per thread (multiple of 4 rows) for load balance.
      const int64_t chunk = (w.rows + 8 * threads - 1) / (8 * threads);
      ctx.rows.chunk = std::max<int64_t>(16, (chunk + 3) / 4 * 4);
      GemvContext* c = &ctx;
      if (threads == 1) {
        GemvWorker<Codec>(c);
      } else {
        pool.run([c](int) HWY_ATTR { GemvWorker<Codec>(c); });
      }
    } else {
      Gemm<Codec>(w, x, ldx, n_tokens, y, ldy, pool);
    }
  });
}

}  // namespace ug::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ug::kernels {

HWY_EXPORT(DequantizeRowImpl);
HWY_EXPORT(DotRowImpl);
HWY_EXPORT(AxpyRowImpl);
HWY_EXPORT(MatmulImpl);
HWY_EXPORT(MatmulRowwiseImpl);

void dequantize_row(TensorType type, const void* src, float* dst, int64_t n) {
  detail::check_row_args("dequantize_row", type, n);
  if (n == 0) return;
  HWY_DYNAMIC_DISPATCH(DequantizeRowImpl)(type, static_cast<const uint8_t*>(src), dst, n);
}

void quantize_row(TensorType type, const float* src, void* dst, int64_t n) {
  ref::quantize_row(type, src, dst, n);
}

float dot_row(TensorType type, const void* row, const float* x, int64_t n) {
  detail::check_row_args("dot_row", type, n);
  if (n == 0) return 0.0f;
  return HWY_DYNAMIC_DISPATCH(DotRowImpl)(type, static_cast<const uint8_t*>(row), x, n);
}

void axpy_row(TensorType type, const void* row, float a, float* y, int64_t n) {
  detail::check_row_args("axpy_row", type, n);
  if (n == 0) return;
  HWY_DYNAMIC_DISPATCH(AxpyRowImpl)(type, static_cast<const uint8_t*>(row), a, y, n);
}

namespace {
std::atomic<bool> g_exact_matmul{false};

bool use_gemv_i16(TensorType type) {
  return detail::gemv_i16_supports(type) && !g_exact_matmul.load(std::memory_order_relaxed);
}
}  // namespace

void set_exact_matmul(bool exact) {
  g_exact_matmul.store(exact, std::memory_order_relaxed);
}

bool exact_matmul() {
  return g_exact_matmul.load(std::memory_order_relaxed);
}

void matmul(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y, int64_t ldy,
            ThreadPool& pool) {
  detail::check_matmul_args(w, x, ldx, n_tokens, y, ldy);
  if (n_tokens == 0 || w.rows == 0) return;
  if (w.cols == 0) {
    for (int64_t t = 0; t < n_tokens; ++t) std::fill(y + t * ldy, y + t * ldy + w.rows, 0.0f);
    return;
  }
  if (n_tokens <= detail::kGemvI16MaxTokens && use_gemv_i16(w.type)) {
    detail::gemv_i16(w, x, ldx, n_tokens, y, ldy, pool);
    return;
  }
  HWY_DYNAMIC_DISPATCH(MatmulImpl)(w, x, ldx, n_tokens, y, ldy, pool);
}

void matmul_rowwise(const Matrix& w, const float* x, int64_t ldx, int64_t n_tokens, float* y,
                    int64_t ldy, ThreadPool& pool) {
  detail::check_matmul_args(w, x, ldx, n_tokens, y, ldy);
  if (n_tokens == 0 || w.rows == 0) return;
  if (w.cols == 0) {
    for (int64_t t = 0; t < n_tokens; ++t) std::fill(y + t * ldy, y + t * ldy + w.rows, 0.0f);
    return;
  }
  if (use_gemv_i16(w.type)) {
    detail::gemv_i16(w, x, ldx, n_tokens, y, ldy, pool);
    return;
  }
  HWY_DYNAMIC_DISPATCH(MatmulRowwiseImpl)(w, x, ldx, n_tokens, y, ldy, pool);
}

}  // namespace ug::kernels
#endif  // HWY_ONCE
