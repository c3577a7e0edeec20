#include "runtime/sampler.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <string>

#include "util/error.h"

namespace ug {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::string number(double v) {
  std::string s = std::to_string(v);
  // to_string always prints 6 decimals; trim them so messages read "2" rather than "2.000000".
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  return s;
}

[[noreturn]] void bad_param(const char* what, const char* range, double got) {
  throw Error(std::string("sampler: ") + what + " must be " + range + ", got " + number(got));
}

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

// Max over independent lanes: a single running max is a dependency chain the compiler may not
// vectorise (NaN semantics), lanes are. The inputs here hold no NaN.
float max_of(const float* p, size_t n) {
  constexpr size_t kLanes = 16;
  float lane[kLanes];
  std::fill(lane, lane + kLanes, kNegInf);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (size_t j = 0; j < kLanes; ++j) lane[j] = p[i + j] > lane[j] ? p[i + j] : lane[j];
  }
  float best = kNegInf;
  for (float v : lane) best = v > best ? v : best;
  for (; i < n; ++i) best = p[i] > best ? p[i] : best;
  return best;
}

}  // namespace

void validate(const SamplerParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0) {
    bad_param("temperature", "finite and >= 0", p.temperature);
  }
  if (!(p.top_p >= 0 && p.top_p <= 1)) bad_param("top_p", "in [0, 1]", p.top_p);
  if (!(p.min_p >= 0 && p.min_p <= 1)) bad_param("min_p", "in [0, 1]", p.min_p);
  if (!std::isfinite(p.repetition_penalty) || p.repetition_penalty <= 0) {
    bad_param("repetition_penalty", "finite and > 0", p.repetition_penalty);
  }
  if (!std::isfinite(p.presence_penalty))
    bad_param("presence_penalty", "finite", p.presence_penalty);
  if (!std::isfinite(p.frequency_penalty)) {
    bad_param("frequency_penalty", "finite", p.frequency_penalty);
  }
  if (p.penalty_last_n < -1) bad_param("penalty_last_n", ">= -1", p.penalty_last_n);
}

void apply_model_sampling_defaults(const MetadataLookup& lookup, SamplerParams& params) {
  auto get = [&](std::string_view key) -> std::optional<double> {
    std::optional<double> v = lookup(key);
    if (v && !std::isfinite(*v)) return std::nullopt;
    return v;
  };
  auto get_int = [&](std::string_view key) -> std::optional<int32_t> {
    std::optional<double> v = get(key);
    if (!v) return std::nullopt;
    // Clamp before converting: a double outside int32 range is UB to cast.
    double clamped = std::clamp(*v, -2147483648.0, 2147483647.0);
    return static_cast<int32_t>(std::llround(clamped));
  };
  if (auto v = get("general.sampling.temp")) params.temperature = static_cast<float>(*v);
  if (auto v = get_int("general.sampling.top_k")) params.top_k = *v;
  if (auto v = get("general.sampling.top_p")) params.top_p = static_cast<float>(*v);
  if (auto v = get("general.sampling.min_p")) params.min_p = static_cast<float>(*v);
  if (auto v = get_int("general.sampling.penalty_last_n")) params.penalty_last_n = *v;
  if (auto v = get("general.sampling.penalty_repeat")) {
    params.repetition_penalty = static_cast<float>(*v);
  }
  if (auto v = get("general.sampling.penalty_present")) {
    params.presence_penalty = static_cast<float>(*v);
  }
  if (auto v = get("general.sampling.penalty_freq")) {
    params.frequency_penalty = static_cast<float>(*v);
  }
}

void Rng::reseed(uint64_t seed) {
  uint64_t state = seed;
  for (uint64_t& word : s_) word = splitmix64(state);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

Sampler::Sampler(SamplerParams params, std::vector<int32_t> suppressed_ids)
    : params_(params), suppressed_(std::move(suppressed_ids)), rng_(params.seed) {
  validate(params_);
}

void Sampler::prepare_logits(std::span<const float> logits, std::span<const int32_t> history) {
  if (logits.empty()) throw Error("sampler: empty logits");
  if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw Error("sampler: vocabulary of " + std::to_string(logits.size()) +
                " entries is too large");
  }
  const size_t n = logits.size();
  work_.resize(n);
  const float* in = logits.data();
  float* out = work_.data();
  for (size_t i = 0; i < n; ++i) {
    // NaN would poison comparisons and sums; +inf would turn exp(l - max) into NaN.
    const float v = in[i];
    out[i] = v == v ? std::min(v, FLT_MAX) : kNegInf;
  }
  for (int32_t id : suppressed_) {
    if (id >= 0 && static_cast<size_t>(id) < n) work_[id] = kNegInf;
  }

  const bool penalties = params_.repetition_penalty != 1.0f || params_.presence_penalty != 0.0f ||
                         params_.frequency_penalty != 0.0f;
  if (!penalties || params_.penalty_last_n == 0 || history.empty()) return;
  size_t window = history.size();
  if (params_.penalty_last_n > 0) {
    window = std::min(window, static_cast<size_t>(params_.penalty_last_n));
  }
  window_.clear();
  for (int32_t id : history.subspan(history.size() - window)) {
    if (id >= 0 && static_cast<size_t>(id) < n) window_.push_back(id);
  }
  std::sort(window_.begin(), window_.end());
  for (size_t i = 0; i < window_.size();) {
    size_t j = i;
    while (j < window_.size() && window_[j] == window_[i]) ++j;
    const int32_t id = window_[i];
    const float count = static_cast<float>(j - i);
    float& l = work_[id];
    if (l > 0) {
      l /= params_.repetition_penalty;
    } else {
      l *= params_.repetition_penalty;
    }
    l -= count * params_.frequency_penalty + params_.presence_penalty;
    if (std::isnan(l)) l = kNegInf;  // -inf * penalty stays -inf, but guard anyway
    i = j;
  }
}

int32_t Sampler::greedy_pick() const {
  // Two passes (max, then the first index holding it) instead of one loop carrying an index:
  // the max pass vectorises, and the first match is the lowest id among ties.
  const float best_logit = max_of(work_.data(), work_.size());
  if (best_logit == kNegInf) throw Error("sampler: every token is suppressed or has logit -inf");
  const auto it = std::find(work_.begin(), work_.end(), best_logit);
  return static_cast<int32_t>(it - work_.begin());
}

namespace {

// Total order used everywhere: higher logit first, lower id among ties.
template <class C>
bool better(const C& a, const C& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

}  // namespace

template <class WeightOf>
void Sampler::cut_sorted_top_p(const WeightOf& weight_of) {
  // Keep the shortest best-first prefix whose mass reaches top_p of the total.
  double total = 0;
  for (const Candidate& c : cand_) total += weight_of(c);
  const double target = static_cast<double>(params_.top_p) * total;
  size_t keep = 0;
  double cum = 0;
  while (keep < cand_.size() && !(keep > 0 && cum >= target)) cum += weight_of(cand_[keep++]);
  cand_.resize(keep);
}

template <class WeightOf>
void Sampler::cut_unsorted_top_p(float max_logit, double inv_temp, const WeightOf& weight_of) {
  // Same cut as cut_sorted_top_p without sorting the vocabulary: a histogram over
  // x = (logit - max) / T gives the mass per bucket; every bucket above the one where the
  // cumulative mass crosses the target is kept whole, and only that boundary bucket is sorted.
  constexpr int kBuckets = 1024;
  constexpr double kRange = 32.0;  // x below -32 (weight < 1.3e-14) shares the last bucket
  auto bucket_of = [&](const Candidate& c) {
    const double depth =
        (static_cast<double>(max_logit) - c.logit) * inv_temp * (kBuckets / kRange);
    return depth < kBuckets - 1 ? static_cast<int>(depth) : kBuckets - 1;
  };
  bucket_mass_.assign(kBuckets, 0.0);
  double total = 0;
  for (const Candidate& c : cand_) {
    const double w = weight_of(c);
    bucket_mass_[bucket_of(c)] += w;
    total += w;
  }
  const double target = static_cast<double>(params_.top_p) * total;
  int boundary = 0;
  double mass_above = 0;
  while (boundary < kBuckets - 1 && mass_above + bucket_mass_[boundary] < target) {
    mass_above += bucket_mass_[boundary++];
  }
  boundary_.clear();
  size_t out = 0;
  for (const Candidate& c : cand_) {
    const int b = bucket_of(c);
    if (b < boundary) {
      cand_[out++] = c;
    } else if (b == boundary) {
      boundary_.push_back(c);
    }
  }
  cand_.resize(out);
  std::sort(boundary_.begin(), boundary_.end(), better<Candidate>);
  double cum = mass_above;
  for (const Candidate& c : boundary_) {
    if (!cand_.empty() && cum >= target) break;
    cand_.push_back(c);
    cum += weight_of(c);
  }
}

double Sampler::build_distribution() {
  auto better = [](const Candidate& a, const Candidate& b) { return ug::better(a, b); };
  const size_t n = work_.size();
  cand_.clear();
  bool sorted = false;
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
    // Bounded heap whose front is the worst kept candidate: one comparison for most ids.
    const size_t k = static_cast<size_t>(params_.top_k);
    cand_.reserve(k);
    for (size_t i = 0; i < n; ++i) {
      const float l = work_[i];
      if (l == kNegInf) continue;
      if (cand_.size() < k) {
        cand_.push_back({l, static_cast<int32_t>(i)});
        std::push_heap(cand_.begin(), cand_.end(), better);
      } else if (l > cand_.front().logit) {  // equal logit loses: its id is higher
        std::pop_heap(cand_.begin(), cand_.end(), better);
        cand_.back() = {l, static_cast<int32_t>(i)};
        std::push_heap(cand_.begin(), cand_.end(), better);
      }
    }
    std::sort_heap(cand_.begin(), cand_.end(), better);
    sorted = true;
  } else {
    cand_.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      if (work_[i] != kNegInf) cand_.push_back({work_[i], static_cast<int32_t>(i)});
    }
  }
  if (cand_.empty()) throw Error("sampler: every token is suppressed or has logit -inf");

  // Sorted: the best comes first. Otherwise every finite logit is a candidate, so the max over
  // the vocabulary is theirs.
  const float max_logit = sorted ? cand_[0].logit : max_of(work_.data(), n);
  const double inv_temp = 1.0 / static_cast<double>(params_.temperature);
  // Weights relative to the best candidate, in (0, 1]; float exp is plenty for probabilities
  // and several times cheaper than double over a 262144-entry vocabulary.
  auto weight_of = [&](const Candidate& c) {
    return static_cast<double>(
        std::exp(static_cast<float>((static_cast<double>(c.logit) - max_logit) * inv_temp)));
  };

  if (params_.top_p < 1.0f) {
    if (sorted) {
      cut_sorted_top_p(weight_of);
    } else {
      cut_unsorted_top_p(max_logit, inv_temp, weight_of);
    }
  }

  weight_.resize(cand_.size());
  for (size_t i = 0; i < cand_.size(); ++i) weight_[i] = weight_of(cand_[i]);

  if (params_.min_p > 0.0f) {
    // The best candidate always survives top-k/top-p and has weight exp(0) = 1, so the min-p
    // threshold min_p * p_max is simply min_p in these unnormalised units.
    const double threshold = params_.min_p;
    size_t out = 0;
    for (size_t i = 0; i < cand_.size(); ++i) {
      if (weight_[i] >= threshold) {
        cand_[out] = cand_[i];
        weight_[out] = weight_[i];
        ++out;
      }
    }
    cand_.resize(out);
    weight_.resize(out);
  }

  double total = 0;
  for (double w : weight_) total += w;
  return total;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  prepare_logits(logits, history);
  if (params_.temperature <= 0.0f) return greedy_pick();
  const double total = build_distribution();
  const double target = rng_.uniform() * total;
  double cum = 0;
  int32_t last_positive = cand_.front().id;  // the best candidate, weight 1
  for (size_t i = 0; i < cand_.size(); ++i) {
    if (weight_[i] <= 0) continue;  // underflowed to 0: probabilities() reports 0 for it too
    cum += weight_[i];
    last_positive = cand_[i].id;
    if (target < cum) return cand_[i].id;
  }
  return last_positive;  // rounding left target at the very top
}

void Sampler::probabilities(std::span<const float> logits, std::span<const int32_t> history,
                            std::vector<float>& probs_out) {
  prepare_logits(logits, history);
  probs_out.assign(logits.size(), 0.0f);
  if (params_.temperature <= 0.0f) {
    probs_out[greedy_pick()] = 1.0f;
    return;
  }
  const double total = build_distribution();
  for (size_t i = 0; i < cand_.size(); ++i) {
    probs_out[cand_[i].id] = static_cast<float>(weight_[i] / total);
  }
}

int32_t Sampler::sample_from(std::span<const float> probs) {
  double total = 0;
  int32_t last_positive = -1;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] > 0 && std::isfinite(probs[i])) {
      total += probs[i];
      last_positive = static_cast<int32_t>(i);
    }
  }
  if (last_positive < 0) throw Error("sampler: distribution has no positive probability");
  const double target = rng_.uniform() * total;
  double cum = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] > 0 && std::isfinite(probs[i])) {
      cum += probs[i];
      if (target < cum) return static_cast<int32_t>(i);
    }
  }
  return last_positive;
}

}  // namespace ug
