#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include "util/error.h"

namespace ug {
namespace {

SamplerParams plain(float temperature = 1.0f) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  return p;
}

// Logits whose softmax is exactly `probs` (up to float rounding).
std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
  return l;
}

std::vector<float> random_logits(size_t n, uint64_t seed, float scale) {
  Rng rng(seed);
  std::vector<float> l(n);
  for (float& v : l) {
    // Sum of uniforms: a bell-ish shape with a few clear leaders, like real logits.
    double s = rng.uniform() + rng.uniform() + rng.uniform() - 1.5;
    v = static_cast<float>(s * scale);
  }
  return l;
}

std::vector<float> probs_of(Sampler& s, const std::vector<float>& logits,
                            const std::vector<int32_t>& history = {}) {
  std::vector<float> p;
  s.probabilities(logits, history, p);
  return p;
}

// Straightforward reference: full sort, the same transform order as the sampler.
std::vector<double> reference_probs(const std::vector<float>& logits, const SamplerParams& p,
                                    const std::vector<int32_t>& suppressed) {
  const size_t n = logits.size();
  std::vector<double> l(logits.begin(), logits.end());
  for (int32_t id : suppressed) l[id] = -INFINITY;
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  std::vector<int32_t> kept;
  for (int32_t id : order) {
    if (l[id] != -INFINITY) kept.push_back(id);
  }
  if (p.top_k > 0 && kept.size() > static_cast<size_t>(p.top_k)) kept.resize(p.top_k);
  const double max = l[kept[0]];
  std::vector<double> w;
  for (int32_t id : kept) w.push_back(std::exp((l[id] - max) / p.temperature));
  double total = std::accumulate(w.begin(), w.end(), 0.0);
  if (p.top_p < 1) {
    double cum = 0;
    size_t keep = 0;
    while (keep < kept.size() && !(keep > 0 && cum >= p.top_p * total)) cum += w[keep++];
    kept.resize(keep);
    w.resize(keep);
  }
  std::vector<double> out(n, 0.0);
  double sum = 0;
  for (size_t i = 0; i < kept.size(); ++i) {
    if (w[i] >= p.min_p) sum += w[i];
  }
  for (size_t i = 0; i < kept.size(); ++i) {
    if (w[i] >= p.min_p) out[kept[i]] = w[i] / sum;
  }
  return out;
}

TEST(Rng, MatchesXoshiro256StarStarReferenceValues) {
  // Computed with an independent implementation of splitmix64 seeding + xoshiro256**.
  Rng zero(0);
  EXPECT_EQ(zero.next_u64(), 0x99ec5f36cb75f2b4ull);
  EXPECT_EQ(zero.next_u64(), 0xbf6e1f784956452aull);
  EXPECT_EQ(zero.next_u64(), 0x1a5f849d4933e6e0ull);
  Rng answer(42);
  EXPECT_EQ(answer.next_u64(), 0x15780b2e0c2ec716ull);
  EXPECT_EQ(answer.next_u64(), 0x6104d9866d113a7eull);
}

TEST(Rng, UniformIsInHalfOpenUnitInterval) {
  Rng rng(7);
  double lo = 1, hi = 0, sum = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    lo = std::min(lo, u);
    hi = std::max(hi, u);
    sum += u;
  }
  EXPECT_LT(lo, 1e-3);
  EXPECT_GT(hi, 1 - 1e-3);
  EXPECT_NEAR(sum / n, 0.5, 0.005);
}

TEST(SamplerParams, GemmaDefaults) {
  SamplerParams p;
  EXPECT_EQ(p.temperature, 1.0f);
  EXPECT_EQ(p.top_k, 64);
  EXPECT_EQ(p.top_p, 0.95f);
  EXPECT_EQ(p.min_p, 0.0f);
  EXPECT_EQ(p.repetition_penalty, 1.0f);
}

TEST(SamplerParams, InvalidValuesThrowNamingTheField) {
  auto message = [](SamplerParams p) {
    try {
      Sampler s(p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  SamplerParams p;
  p.top_p = 1.5f;
  EXPECT_NE(message(p).find("top_p"), std::string::npos) << message(p);
  p = {};
  p.temperature = -1;
  EXPECT_NE(message(p).find("temperature"), std::string::npos);
  p = {};
  p.temperature = NAN;
  EXPECT_NE(message(p).find("temperature"), std::string::npos);
  p = {};
  p.min_p = -0.1f;
  EXPECT_NE(message(p).find("min_p"), std::string::npos);
  p = {};
  p.repetition_penalty = 0;
  EXPECT_NE(message(p).find("repetition_penalty"), std::string::npos);
  p = {};
  p.penalty_last_n = -2;
  EXPECT_NE(message(p).find("penalty_last_n"), std::string::npos);
  EXPECT_EQ(message(SamplerParams{}), "");
}

TEST(SamplerParams, ModelMetadataOverridesOnlyPublishedKeys) {
  std::map<std::string, double> meta = {{"general.sampling.temp", 0.6},
                                        {"general.sampling.top_k", 20},
                                        {"general.sampling.min_p", 0.0},
                                        {"general.sampling.penalty_repeat", 1.05},
                                        {"general.sampling.penalty_last_n", 1e12}};
  SamplerParams p;
  p.min_p = 0.3f;
  apply_model_sampling_defaults(
      [&](std::string_view k) -> std::optional<double> {
        auto it = meta.find(std::string(k));
        if (it == meta.end()) return std::nullopt;
        return it->second;
      },
      p);
  EXPECT_FLOAT_EQ(p.temperature, 0.6f);
  EXPECT_EQ(p.top_k, 20);
  EXPECT_EQ(p.top_p, 0.95f);  // not published: default kept
  EXPECT_EQ(p.min_p, 0.0f);   // a published zero is a real value
  EXPECT_FLOAT_EQ(p.repetition_penalty, 1.05f);
  EXPECT_EQ(p.penalty_last_n, 2147483647);  // clamped, no overflow
}

TEST(Sampler, GreedyIsArgmaxWithTiesToLowestId) {
  Sampler s(plain(0.0f));
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::vector<float> l = random_logits(1000, seed, 8);
    const int32_t expect = static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
    EXPECT_EQ(s.sample(l, {}), expect);
    std::vector<float> p = probs_of(s, l);
    EXPECT_EQ(p[expect], 1.0f);
    EXPECT_EQ(std::accumulate(p.begin(), p.end(), 0.0), 1.0);
  }
  std::vector<float> tie = {1, 5, 2, 5, 5};
  EXPECT_EQ(s.sample(tie, {}), 1);
}

TEST(Sampler, SuppressedIdsAreNeverChosenEvenWhenMax) {
  std::vector<float> l = {0.0f, 9.0f, 1.0f, 8.5f, 0.5f};
  Sampler greedy(plain(0.0f), {1, 3, 99, -5});  // out-of-range ids are ignored
  EXPECT_EQ(greedy.sample(l, {}), 2);

  SamplerParams p = plain(5.0f);  // hot: every allowed id gets real mass
  Sampler hot(p, {1, 3});
  std::vector<float> probs = probs_of(hot, l);
  EXPECT_EQ(probs[1], 0.0f);
  EXPECT_EQ(probs[3], 0.0f);
  for (int i = 0; i < 5000; ++i) {
    int32_t id = hot.sample(l, {});
    ASSERT_NE(id, 1);
    ASSERT_NE(id, 3);
  }

  Sampler all(plain(1.0f), {0, 1, 2, 3, 4});
  EXPECT_THROW(all.sample(l, {}), Error);
  Sampler all_greedy(plain(0.0f), {0, 1, 2, 3, 4});
  EXPECT_THROW(all_greedy.sample(l, {}), Error);
}

TEST(Sampler, TopKOneEqualsGreedy) {
  SamplerParams p = plain(1.5f);
  p.top_k = 1;
  Sampler top1(p, {7});
  Sampler greedy(plain(0.0f), {7});
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    std::vector<float> l = random_logits(4096, seed, 3);
    if (seed % 5 == 0) l[7] = 100;          // suppressed leader must not win either way
    if (seed % 7 == 0) l[11] = l[12] = 50;  // tie at the top
    EXPECT_EQ(top1.sample(l, {}), greedy.sample(l, {})) << "seed " << seed;
  }
}

TEST(Sampler, TopKKeepsTheKBestRenormalised) {
  SamplerParams p = plain();
  p.top_k = 2;
  Sampler s(p);
  // ids in scrambled order so "first k ids" would be wrong
  std::vector<float> l = logits_for({0.05, 0.3, 0.15, 0.5});
  std::vector<float> probs = probs_of(s, l);
  EXPECT_EQ(probs[0], 0.0f);
  EXPECT_NEAR(probs[1], 0.3 / 0.8, 1e-6);
  EXPECT_EQ(probs[2], 0.0f);
  EXPECT_NEAR(probs[3], 0.5 / 0.8, 1e-6);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  std::vector<float> l = logits_for({0.15, 0.5, 0.05, 0.3});  // sorted: 1, 3, 0, 2
  auto kept = [&](float top_p) {
    SamplerParams p = plain();
    p.top_p = top_p;
    Sampler s(p);
    std::vector<float> probs = probs_of(s, l);
    std::vector<int> ids;
    for (int i = 0; i < 4; ++i) {
      if (probs[i] > 0) ids.push_back(i);
    }
    return std::make_pair(ids, probs);
  };
  EXPECT_EQ(kept(0.0f).first, (std::vector<int>{1}));
  EXPECT_EQ(kept(0.45f).first, (std::vector<int>{1}));
  EXPECT_EQ(kept(0.55f).first, (std::vector<int>{1, 3}));
  EXPECT_EQ(kept(0.75f).first, (std::vector<int>{1, 3}));
  EXPECT_EQ(kept(0.85f).first, (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(kept(0.97f).first, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(kept(1.0f).first, (std::vector<int>{0, 1, 2, 3}));
  auto [ids, probs] = kept(0.85f);
  EXPECT_NEAR(probs[1], 0.5 / 0.95, 1e-6);
  EXPECT_NEAR(probs[3], 0.3 / 0.95, 1e-6);
  EXPECT_NEAR(probs[0], 0.15 / 0.95, 1e-6);
}

TEST(Sampler, MinPIsRelativeToTheTopProbability) {
  std::vector<float> l = logits_for({0.15, 0.5, 0.05, 0.3});
  auto kept = [&](float min_p) {
    SamplerParams p = plain();
    p.min_p = min_p;
    Sampler s(p);
    std::vector<float> probs = probs_of(s, l);
    std::vector<int> ids;
    for (int i = 0; i < 4; ++i) {
      if (probs[i] > 0) ids.push_back(i);
    }
    return ids;
  };
  EXPECT_EQ(kept(0.0f), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(kept(0.08f), (std::vector<int>{0, 1, 2, 3}));  // threshold 0.04
  EXPECT_EQ(kept(0.2f), (std::vector<int>{0, 1, 3}));      // threshold 0.10
  EXPECT_EQ(kept(0.5f), (std::vector<int>{1, 3}));         // threshold 0.25
  EXPECT_EQ(kept(0.7f), (std::vector<int>{1}));            // threshold 0.35
  EXPECT_EQ(kept(1.0f), (std::vector<int>{1}));
}

TEST(Sampler, TemperatureSharpensAndFlattens) {
  std::vector<float> l = logits_for({0.2, 0.8});
  Sampler hot(plain(2.0f));
  std::vector<float> p = probs_of(hot, l);
  // p_i ∝ p_i^(1/T)
  const double a = std::sqrt(0.2), b = std::sqrt(0.8);
  EXPECT_NEAR(p[0], a / (a + b), 1e-6);
  Sampler cold(plain(0.5f));
  p = probs_of(cold, l);
  EXPECT_NEAR(p[0], 0.04 / (0.04 + 0.64), 1e-6);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplerParams p = plain();
  p.repetition_penalty = 2.0f;
  Sampler s(p);
  std::vector<float> l = {2.0f, -1.0f, 0.5f, 3.0f};
  // id 1 appears twice: the repetition penalty applies once per id regardless.
  std::vector<float> probs = probs_of(s, l, {0, 1, 1, 3});
  std::vector<double> expect = {1.0, -2.0, 0.5, 1.5};
  double z = 0;
  for (double v : expect) z += std::exp(v);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(probs[i], std::exp(expect[i]) / z, 1e-6) << i;
}

TEST(Sampler, PresenceAndFrequencyPenaltiesSubtract) {
  SamplerParams p = plain();
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  Sampler s(p);
  std::vector<float> l = {2.0f, -1.0f, 0.5f, 3.0f};
  std::vector<float> probs = probs_of(s, l, {3, 1, 3, 3, 500, -1});  // bad ids ignored
  // id 1: once -> -1 - 0.5 - 0.25; id 3: three times -> 3 - 0.5 - 0.75
  std::vector<double> expect = {2.0, -1.75, 0.5, 1.75};
  double z = 0;
  for (double v : expect) z += std::exp(v);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(probs[i], std::exp(expect[i]) / z, 1e-6) << i;
}

TEST(Sampler, PenaltiesLookOnlyAtTheLastNTokens) {
  SamplerParams p = plain(0.0f);
  p.presence_penalty = 10.0f;
  p.penalty_last_n = 2;
  Sampler s(p);
  std::vector<float> l = {5.0f, 4.0f, 3.0f};
  EXPECT_EQ(s.sample(l, std::vector<int32_t>{0, 2, 2}), 0);  // 0 is outside the window
  EXPECT_EQ(s.sample(l, std::vector<int32_t>{2, 0}), 1);
  p.penalty_last_n = 0;  // disabled
  Sampler off(p);
  EXPECT_EQ(off.sample(l, std::vector<int32_t>{0}), 0);
  p.penalty_last_n = -1;  // whole history
  Sampler whole(p);
  EXPECT_EQ(whole.sample(l, std::vector<int32_t>{0, 2, 2, 2, 2, 2}), 1);
}

TEST(Sampler, SameSeedSameSequence) {
  std::vector<float> l = random_logits(32000, 3, 4);
  auto run = [&](uint64_t seed) {
    SamplerParams p;
    p.seed = seed;
    p.top_k = 0;
    p.top_p = 1;
    Sampler s(p);
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(s.sample(l, out));
    return out;
  };
  EXPECT_EQ(run(1234), run(1234));
  EXPECT_NE(run(1234), run(1235));

  SamplerParams p;
  p.seed = 9;
  Sampler s(p);
  std::vector<int32_t> first, again;
  for (int i = 0; i < 50; ++i) first.push_back(s.sample(l, {}));
  s.reseed(9);
  for (int i = 0; i < 50; ++i) again.push_back(s.sample(l, {}));
  EXPECT_EQ(first, again);
}

// Pearson chi-square of observed counts against expected probabilities; also fails on any draw
// of a zero-probability id.
double chi_square(const std::vector<int>& counts, const std::vector<float>& probs, int draws,
                  int* bins) {
  double chi = 0;
  *bins = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "drew zero-probability id " << i;
      continue;
    }
    const double e = probs[i] * static_cast<double>(draws);
    chi += (counts[i] - e) * (counts[i] - e) / e;
    ++*bins;
  }
  return chi;
}

TEST(Sampler, EmpiricalFrequenciesMatchProbabilities) {
  // 12 ids, combined transforms: temperature, top-k cut, top-p cut, one suppressed id.
  std::vector<float> l = {2.0f, 1.5f, 0.2f, 1.0f, -0.5f, 0.8f, 2.2f, 0.0f, -2.0f, 1.2f, 0.4f, 3.0f};
  SamplerParams p;
  p.temperature = 0.9f;
  p.top_k = 9;
  p.top_p = 0.97f;
  p.seed = 2024;
  Sampler s(p, {11});
  std::vector<float> probs = probs_of(s, l);
  double total = std::accumulate(probs.begin(), probs.end(), 0.0);
  EXPECT_NEAR(total, 1.0, 1e-6);
  const int draws = 200000;
  std::vector<int> counts(l.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[s.sample(l, {})];
  int bins = 0;
  const double chi = chi_square(counts, probs, draws, &bins);
  ASSERT_GE(bins, 5);  // the cuts really left several ids
  ASSERT_LE(bins, 8);  // ... and really cut some
  // 99.9% critical values of chi-square for 4..7 degrees of freedom (bins - 1).
  const double critical[] = {18.47, 20.52, 22.46, 24.32};
  EXPECT_LT(chi, critical[bins - 5]) << "bins " << bins;
}

TEST(Sampler, SampleFromDrawsAnExplicitDistribution) {
  SamplerParams p;
  p.seed = 5;
  Sampler s(p);
  std::vector<float> dist = {0.0f, 2.0f, -1.0f, 1.0f, 1.0f};  // unnormalised, negative = 0
  std::vector<float> probs = {0.0f, 0.5f, 0.0f, 0.25f, 0.25f};
  const int draws = 100000;
  std::vector<int> counts(dist.size(), 0);
  for (int i = 0; i < draws; ++i) ++counts[s.sample_from(dist)];
  int bins = 0;
  EXPECT_LT(chi_square(counts, probs, draws, &bins), 13.8);  // df 2, 99.9%
  EXPECT_THROW(s.sample_from(std::vector<float>{0.0f, -1.0f}), Error);
}

TEST(Sampler, FullVocabularyMatchesAFullSortReference) {
  const size_t n = 262144;
  std::vector<float> l = random_logits(n, 77, 12);
  l[1000] = 30;  // a leader that gets suppressed
  const std::vector<int32_t> suppressed = {1000, 258882, 258883};
  struct Case {
    int32_t top_k;
    float top_p;
    float min_p;
    float temperature;
  };
  for (const Case& c : {Case{64, 0.95f, 0.0f, 1.0f}, Case{0, 0.9f, 0.0f, 1.0f},
                        Case{0, 1.0f, 0.0f, 0.7f}, Case{0, 0.999f, 0.01f, 1.3f},
                        Case{40, 1.0f, 0.05f, 0.8f}, Case{300000, 0.5f, 0.0f, 1.0f}}) {
    SamplerParams p;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    p.temperature = c.temperature;
    Sampler s(p, suppressed);
    std::vector<float> got = probs_of(s, l);
    std::vector<double> want = reference_probs(l, p, suppressed);
    size_t kept_got = 0, kept_want = 0;
    double max_diff = 0;
    for (size_t i = 0; i < n; ++i) {
      kept_got += got[i] > 0;
      kept_want += want[i] > 0;
      max_diff = std::max(max_diff, std::abs(got[i] - want[i]));
    }
    EXPECT_EQ(kept_got, kept_want) << "top_k " << c.top_k << " top_p " << c.top_p;
    EXPECT_LT(max_diff, 1e-6) << "top_k " << c.top_k << " top_p " << c.top_p;
    EXPECT_EQ(got[1000], 0.0f);
    // sample() draws only from the kept set
    for (int i = 0; i < 20; ++i) ASSERT_GT(got[s.sample(l, {})], 0.0f);
  }
}

TEST(Sampler, NonFiniteLogitsDoNotBreakSampling) {
  std::vector<float> l = {NAN, 1.0f, INFINITY, -INFINITY, 0.5f};
  Sampler greedy(plain(0.0f));
  EXPECT_EQ(greedy.sample(l, {}), 2);
  Sampler s(plain(1.0f));
  std::vector<float> probs = probs_of(s, l);
  EXPECT_EQ(probs[0], 0.0f);
  EXPECT_EQ(probs[3], 0.0f);
  EXPECT_NEAR(probs[2], 1.0f, 1e-6);
  EXPECT_THROW(s.sample(std::vector<float>{}, {}), Error);
  std::vector<float> all_nan = {NAN, NAN};
  EXPECT_THROW(s.sample(all_nan, {}), Error);
}

}  // namespace
}  // namespace ug
