// SIMD (Highway) elementwise kernels on fp32 activations, plus target selection
// (active_target / force_targets).
#include <cmath>
#include <limits>

#include "kernels/kernels.h"
#include "kernels/kernels_ref.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/elementwise_simd.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.h.
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace ug::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
constexpr int64_t kMaxLanes = int64_t(hn::MaxLanes(DF()));

// Sum of x[i]^2 with four independent accumulators.
float SumSquares(const float* x, int64_t n) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    const VF v0 = hn::LoadU(df, x + i);
    const VF v1 = hn::LoadU(df, x + i + N);
    const VF v2 = hn::LoadU(df, x + i + 2 * N);
    const VF v3 = hn::LoadU(df, x + i + 3 * N);
    a0 = hn::MulAdd(v0, v0, a0);
    a1 = hn::MulAdd(v1, v1, a1);
    a2 = hn::MulAdd(v2, v2, a2);
    a3 = hn::MulAdd(v3, v3, a3);
  }
  for (; i + N <= n; i += N) {
    const VF v = hn::LoadU(df, x + i);
    a0 = hn::MulAdd(v, v, a0);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) sum += x[i] * x[i];
  return sum;
}

void RmsNormImpl(const float* x, const float* w, float* y, int64_t n, float eps) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  const float inv = float(1.0 / std::sqrt(double(SumSquares(x, n)) / double(n) + double(eps)));
  const VF vinv = hn::Set(df, inv);
  int64_t i = 0;
  if (w) {
    for (; i + N <= n; i += N) {
      const VF v = hn::Mul(hn::LoadU(df, x + i), vinv);
      hn::StoreU(hn::Mul(v, hn::LoadU(df, w + i)), df, y + i);
    }
    for (; i < n; ++i) y[i] = (x[i] * inv) * w[i];
  } else {
    for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), vinv), df, y + i);
    for (; i < n; ++i) y[i] = x[i] * inv;
  }
}

// gelu_tanh(g) = 0.5 g (1 + tanh(u)) = g * sigmoid(2u) = g / (1 + exp(-2u)),
// u = sqrt(2/pi) (g + 0.044715 g^3). The sigmoid form has no cancellation for negative g.
HWY_INLINE VF GeluTanh(DF df, VF g) {
  const float kC = 0.7978845608028654f;  // sqrt(2/pi)
  const VF g2 = hn::Mul(g, g);
  const VF u = hn::Mul(g, hn::MulAdd(g2, hn::Set(df, kC * 0.044715f), hn::Set(df, kC)));
  // exp overflows past ~88.7; beyond that g / (1 + e) is -0 to float precision anyway.
  const VF e = hn::Exp(df, hn::Min(hn::Mul(u, hn::Set(df, -2.0f)), hn::Set(df, 88.0f)));
  return hn::Div(g, hn::Add(hn::Set(df, 1.0f), e));
}

void GeluTanhMulImpl(const float* gate, const float* up, float* out, int64_t n) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const VF g = hn::LoadU(df, gate + i);
    const VF u = hn::LoadU(df, up + i);
    hn::StoreU(hn::Mul(GeluTanh(df, g), u), df, out + i);
  }
  if (i < n) {
    // Tail through a full vector so every element uses the same formula.
    alignas(64) float g[kMaxLanes] = {};
    alignas(64) float u[kMaxLanes] = {};
    const int64_t rest = n - i;
    for (int64_t j = 0; j < rest; ++j) {
      g[j] = gate[i + j];
      u[j] = up[i + j];
    }
    hn::Store(hn::Mul(GeluTanh(df, hn::Load(df, g)), hn::Load(df, u)), df, g);
    for (int64_t j = 0; j < rest; ++j) out[i + j] = g[j];
  }
}

void ScaleImpl(float* x, float s, int64_t n) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  const VF vs = hn::Set(df, s);
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), vs), df, x + i);
  for (; i < n; ++i) x[i] *= s;
}

void AddImpl(const float* x, float* y, int64_t n) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Add(hn::LoadU(df, y + i), hn::LoadU(df, x + i)), df, y + i);
  }
  for (; i < n; ++i) y[i] += x[i];
}

void SoftcapImpl(float* x, float cap, int64_t n) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  const VF vcap = hn::Set(df, cap);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Mul(vcap, hn::Tanh(df, hn::Div(hn::LoadU(df, x + i), vcap))), df, x + i);
  }
  if (i < n) {
    alignas(64) float buf[kMaxLanes] = {};
    const int64_t rest = n - i;
    for (int64_t j = 0; j < rest; ++j) buf[j] = x[i + j];
    hn::Store(hn::Mul(vcap, hn::Tanh(df, hn::Div(hn::Load(df, buf), vcap))), df, buf);
    for (int64_t j = 0; j < rest; ++j) x[i + j] = buf[j];
  }
}

void SoftmaxImpl(float* x, int64_t n) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  const float kNegInf = -std::numeric_limits<float>::infinity();
  VF vmax = hn::Set(df, kNegInf);
  int64_t i = 0;
  for (; i + N <= n; i += N) vmax = hn::Max(vmax, hn::LoadU(df, x + i));
  float max = hn::GetLane(hn::MaxOfLanes(df, vmax));
  for (; i < n; ++i) max = std::max(max, x[i]);
  if (max == kNegInf) {
    for (int64_t j = 0; j < n; ++j) x[j] = 0.0f;  // every entry masked: nothing to attend to
    return;
  }
  // exp(x - max) in place, summing as we go; Exp gives exactly 0 for -inf inputs.
  const VF vm = hn::Set(df, max);
  VF vsum = hn::Zero(df);
  i = 0;
  for (; i + N <= n; i += N) {
    const VF e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vm));
    vsum = hn::Add(vsum, e);
    hn::StoreU(e, df, x + i);
  }
  if (i < n) {
    alignas(64) float buf[kMaxLanes];
    const int64_t rest = n - i;
    for (int64_t j = 0; j < kMaxLanes; ++j) buf[j] = j < rest ? x[i + j] : kNegInf;
    const VF e = hn::Exp(df, hn::Sub(hn::Load(df, buf), vm));
    vsum = hn::Add(vsum, e);
    hn::Store(e, df, buf);
    for (int64_t j = 0; j < rest; ++j) x[i + j] = buf[j];
  }
  const float sum = hn::GetLane(hn::SumOfLanes(df, vsum));
  ScaleImpl(x, 1.0f / sum, n);
}

float DotImpl(const float* a, const float* b, int64_t n) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  VF a0 = hn::Zero(df), a1 = hn::Zero(df), a2 = hn::Zero(df), a3 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    a0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), a0);
    a1 = hn::MulAdd(hn::LoadU(df, a + i + N), hn::LoadU(df, b + i + N), a1);
    a2 = hn::MulAdd(hn::LoadU(df, a + i + 2 * N), hn::LoadU(df, b + i + 2 * N), a2);
    a3 = hn::MulAdd(hn::LoadU(df, a + i + 3 * N), hn::LoadU(df, b + i + 3 * N), a3);
  }
  for (; i + N <= n; i += N) a0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), a0);
  float sum = hn::GetLane(hn::SumOfLanes(df, hn::Add(hn::Add(a0, a1), hn::Add(a2, a3))));
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

void AxpyImpl(float a, const float* x, float* y, int64_t n) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  const VF va = hn::Set(df, a);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::MulAdd(va, hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, y + i);
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

const char* TargetNameImpl() {
  return hwy::TargetName(HWY_TARGET);
}

}  // namespace ug::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ug::kernels {

HWY_EXPORT(RmsNormImpl);
HWY_EXPORT(GeluTanhMulImpl);
HWY_EXPORT(ScaleImpl);
HWY_EXPORT(AddImpl);
HWY_EXPORT(SoftcapImpl);
HWY_EXPORT(SoftmaxImpl);
HWY_EXPORT(DotImpl);
HWY_EXPORT(AxpyImpl);
HWY_EXPORT(TargetNameImpl);

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(RmsNormImpl)(x, w, y, n, eps);
}
void gelu_tanh_mul(const float* gate, const float* up, float* out, int64_t n) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(GeluTanhMulImpl)(gate, up, out, n);
}
void scale(float* x, float s, int64_t n) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(ScaleImpl)(x, s, n);
}
void add(const float* x, float* y, int64_t n) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(AddImpl)(x, y, n);
}
void softcap(float* x, float cap, int64_t n) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(SoftcapImpl)(x, cap, n);
}
void softmax(float* x, int64_t n) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(SoftmaxImpl)(x, n);
}
float dot(const float* a, const float* b, int64_t n) {
  if (n <= 0) return 0.0f;
  return HWY_DYNAMIC_DISPATCH(DotImpl)(a, b, n);
}
void axpy(float a, const float* x, float* y, int64_t n) {
  if (n <= 0) return;
  HWY_DYNAMIC_DISPATCH(AxpyImpl)(a, x, y, n);
}

const char* active_target() {
  return HWY_DYNAMIC_DISPATCH(TargetNameImpl)();
}

void force_targets(int64_t mask) {
  hwy::SetSupportedTargetsForTest(mask);
}

int64_t available_targets() {
  return hwy::SupportedTargets() & HWY_TARGETS;
}

const char* target_name(int64_t target) {
  return hwy::TargetName(target);
}

}  // namespace ug::kernels
#endif  // HWY_ONCE
