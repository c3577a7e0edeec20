// Speculative decoding on the tiny oracle model with its two drafters (README-mtp.md): greedy
// output identical to plain greedy for fixed depths 1..8 and adaptive depth; the first sampled
// token's distribution equal to the target's (chi-square goodness of fit); the depth controller.
#include "runtime/speculative.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "model/gemma4/decoder.h"
#include "model/gemma4/drafter.h"
#include "runtime/generate.h"
#include "runtime/oracle_check_mtp.h"
#include "test_support.h"
#include "util/error.h"

namespace ug {
namespace {

using nlohmann::json;

struct Tiny {
  std::unique_ptr<gemma4::Model> target;
  std::unique_ptr<gemma4::DrafterModel> random_drafter, echo_drafter;
};

const Tiny& tiny(const std::string& oracle) {
  static Tiny t = [&] {
    Tiny x;
    x.target = gemma4::load_model(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
    x.random_drafter =
        gemma4::load_drafter(oracle + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf");
    x.echo_drafter =
        gemma4::load_drafter(oracle + "/mtp/models/gemma4-tiny-a-assistant-echo-f32.gguf");
    return x;
  }();
  return t;
}

std::vector<int32_t> case_prompt(const std::string& oracle, const std::string& pair,
                                 const std::string& id) {
  std::ifstream in(oracle + "/mtp/" + pair + "/" + id + "/case.json");
  return json::parse(in)["prompt_tokens"].get<std::vector<int32_t>>();
}

gemma4::DecoderOptions decoder_options(int n_ctx) {
  gemma4::DecoderOptions o;
  o.n_ctx = n_ctx;
  o.n_ubatch = 64;
  o.cache_type = TensorType::F32;
  return o;
}

SamplerParams greedy_params() {
  SamplerParams p;
  p.temperature = 0;
  return p;
}

std::vector<int32_t> plain_greedy(const gemma4::Model& m, const std::vector<int32_t>& prompt, int n,
                                  ThreadPool& pool) {
  gemma4::Decoder dec(m, decoder_options(int(prompt.size()) + n + 16), pool);
  gemma4::Output out;
  dec.eval_tokens(prompt, gemma4::Outputs::kLast, &out);
  GreedyOptions g;
  g.max_tokens = n;
  g.suppress = m.suppress_tokens;
  return greedy_continue(dec, out.logits.data(), g);
}

// Prefills all but the last prompt token and hands the rest to the generator (llama.cpp's
// round structure: the first generated token already goes through verification).
void begin_held_back(gemma4::Decoder& dec, SpeculativeGenerator& gen,
                     const std::vector<int32_t>& prompt) {
  gemma4::Output out;
  dec.eval_tokens(std::vector<int32_t>(prompt.begin(), prompt.end() - 1), gemma4::Outputs::kLast,
                  &out);
  gen.begin(prompt, out.hidden);
}

std::vector<int32_t> speculative_greedy(const gemma4::Model& m, const gemma4::DrafterModel& dm,
                                        const std::vector<int32_t>& prompt, int n, int depth,
                                        ThreadPool& pool, SpeculativeStats* stats = nullptr) {
  gemma4::Decoder dec(m, decoder_options(int(prompt.size()) + n + 16), pool);
  gemma4::Drafter drafter(dm, m, pool);
  Sampler sampler(greedy_params(),
                  std::vector<int32_t>(m.suppress_tokens.begin(), m.suppress_tokens.end()));
  SpeculativeOptions so;
  so.draft_max = 8;
  SpeculativeGenerator gen(dec, &drafter, sampler, so);
  begin_held_back(dec, gen, prompt);
  std::vector<int32_t> out;
  while (int(out.size()) < n) {
    const SpeculativeRound r = gen.round(depth, n - int(out.size()));
    EXPECT_EQ(dec.n_past(), int(gen.history().size()) - 1);
    out.insert(out.end(), r.emitted.begin(), r.emitted.end());
  }
  if (stats) *stats = gen.stats();
  return out;
}

// Under AddressSanitizer everything runs several times slower; the sanitizer job checks memory
// safety of the same code paths on shorter runs, the release job runs the full-size statistics.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kLongRunTokens = 200;
constexpr int kChiSquareDraws = 3000;
#else
constexpr int kLongRunTokens = 2000;
constexpr int kChiSquareDraws = 20000;
#endif

TEST(Speculative, GreedyEqualsPlainOnOraclePrompts) {
  UG_REQUIRE_ORACLE(oracle);
  const Tiny& t = tiny(oracle);
  ThreadPool pool(1);
  for (const char* id : {"p09", "p15", "p16", "p30", "p36"}) {
    const auto prompt = case_prompt(oracle, "tiny-a", id);
    const auto plain = plain_greedy(*t.target, prompt, 48, pool);
    for (const gemma4::DrafterModel* dm : {t.random_drafter.get(), t.echo_drafter.get()}) {
      for (int depth : {4, -1}) {
        SCOPED_TRACE(std::string(id) + " " + dm->path + " depth " + std::to_string(depth));
        EXPECT_EQ(speculative_greedy(*t.target, *dm, prompt, 48, depth, pool), plain);
      }
    }
  }
}

TEST(Speculative, Greedy2000TokensEqualPlainForEveryDepth) {
  UG_REQUIRE_ORACLE(oracle);
  const Tiny& t = tiny(oracle);
  ThreadPool pool(1);
  const auto prompt = case_prompt(oracle, "tiny-a", "p30");
  // UG_SPEC_TOKENS shortens the run for quick iterations; the issue asks for 2000.
  const char* env = std::getenv("UG_SPEC_TOKENS");
  const int n = env ? std::max(10, std::atoi(env)) : kLongRunTokens;
  const auto plain = plain_greedy(*t.target, prompt, n, pool);
  ASSERT_EQ(int(plain.size()), n);
  for (int depth = 1; depth <= 8; ++depth) {
    SpeculativeStats st;
    EXPECT_EQ(speculative_greedy(*t.target, *t.echo_drafter, prompt, n, depth, pool, &st), plain)
        << "depth " << depth;
    EXPECT_GT(st.accepted, 0) << "depth " << depth;  // the echo drafter is often right here
    if (depth == 4) {
      std::printf("[ info ] echo drafter, k=4: %lld rounds, %lld/%lld drafts accepted\n",
                  (long long)st.rounds, (long long)st.accepted, (long long)st.drafted);
    }
  }
  EXPECT_EQ(speculative_greedy(*t.target, *t.echo_drafter, prompt, n, -1, pool), plain)
      << "adaptive";
  EXPECT_EQ(speculative_greedy(*t.target, *t.random_drafter, prompt, n, -1, pool), plain)
      << "adaptive, random drafter";
}

// Upper regularised incomplete gamma Q(a, x) (Numerical Recipes-style series / continued fraction).
double gamma_q(double a, double x) {
  if (x <= 0) return 1;
  const double gln = std::lgamma(a);
  if (x < a + 1) {
    double sum = 1 / a, term = sum, ap = a;
    for (int n = 0; n < 1000; ++n) {
      ap += 1;
      term *= x / ap;
      sum += term;
      if (std::fabs(term) < std::fabs(sum) * 1e-15) break;
    }
    return 1 - sum * std::exp(-x + a * std::log(x) - gln);
  }
  double b = x + 1 - a, c = 1e300, d = 1 / b, h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < 1e-300) d = 1e-300;
    c = b + an / c;
    if (std::fabs(c) < 1e-300) c = 1e-300;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < 1e-15) break;
  }
  return std::exp(-x + a * std::log(x) - gln) * h;
}

// Chi-square goodness of fit of `counts` against `probs` (bins with expected count < 5 pooled).
double chi_square_p_value(const std::vector<int>& counts, const std::vector<float>& probs,
                          int draws, int* dof_out) {
  double chi2 = 0, pooled_expected = 0, pooled_observed = 0;
  int bins = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const double e = double(probs[i]) * draws;
    if (e >= 5) {
      chi2 += (counts[i] - e) * (counts[i] - e) / e;
      ++bins;
    } else {
      pooled_expected += e;
      pooled_observed += counts[i];
    }
  }
  if (pooled_expected >= 5) {
    chi2 +=
        (pooled_observed - pooled_expected) * (pooled_observed - pooled_expected) / pooled_expected;
    ++bins;
  } else {
    EXPECT_LE(pooled_observed, 5 + 5 * pooled_expected);  // tokens the target would not draw
  }
  *dof_out = bins - 1;
  return gamma_q((bins - 1) / 2.0, chi2 / 2);
}

TEST(Speculative, FirstSampledTokenKeepsTheTargetDistribution) {
  UG_REQUIRE_ORACLE(oracle);
  const Tiny& t = tiny(oracle);
  ThreadPool pool(1);
  const auto prompt = case_prompt(oracle, "tiny-a", "p15");
  SamplerParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 0;
  sp.top_p = 1.0f;
  const std::vector<int32_t> suppress(t.target->suppress_tokens.begin(),
                                      t.target->suppress_tokens.end());
  // The exact distribution of the first token without speculation.
  std::vector<float> expected;
  {
    gemma4::Decoder dec(*t.target, decoder_options(64), pool);
    gemma4::Output out;
    dec.eval_tokens(prompt, gemma4::Outputs::kLast, &out);
    Sampler s(sp, suppress);
    s.probabilities(out.logits, prompt, expected);
  }
  const int draws = kChiSquareDraws;
  for (int depth : {1, 3}) {
    gemma4::Decoder dec(*t.target, decoder_options(64), pool);
    gemma4::Drafter drafter(*t.echo_drafter, *t.target, pool);
    Sampler sampler(sp, suppress);
    SpeculativeOptions so;
    SpeculativeGenerator gen(dec, &drafter, sampler, so);
    gemma4::Output out;
    const int n = int(prompt.size());
    dec.eval_tokens(std::vector<int32_t>(prompt.begin(), prompt.end() - 1), gemma4::Outputs::kLast,
                    &out);
    const std::vector<float> hidden = out.hidden;
    std::vector<int> counts(expected.size(), 0);
    int64_t accepted = 0;
    for (int i = 0; i < draws; ++i) {
      dec.cache().truncate(n - 1);
      gen.begin(prompt, hidden);
      sampler.reseed(uint64_t(1000003) * uint64_t(depth) + uint64_t(i));
      const SpeculativeRound r = gen.round(depth);
      ASSERT_EQ(int(r.draft.size()), depth);
      ++counts[size_t(r.emitted[0])];
      accepted += r.n_accepted > 0;
    }
    int dof = 0;
    const double p = chi_square_p_value(counts, expected, draws, &dof);
    std::printf(
        "[ info ] k=%d: %d draws, first draft accepted %.1f%%, chi-square dof %d, p = %.4f\n",
        depth, draws, 100.0 * double(accepted) / draws, dof, p);
    EXPECT_GT(p, 1e-3) << "k=" << depth;
    // Both branches (accepted draft, residual draw) are exercised.
    EXPECT_GT(accepted, draws / 20);
    EXPECT_LT(accepted, draws - draws / 20);
  }
}

TEST(Speculative, ControllerSwitchesOffUselessDraftsAndOnUsefulOnes) {
  SpeculativeOptions o;
  o.draft_max = 4;
  DepthController c(o);
  // Memory-bound costs: verifying 5 positions costs 1.2 decode steps, a draft step 5%.
  auto feed_costs = [&] {
    c.observe_draft_step(0.05);
    for (int n = 1; n <= 5; ++n) c.observe_verify(n, 1.0 + 0.05 * (n - 1));
  };
  feed_costs();
  for (int i = 0; i < 200; ++i) c.observe_round(4, 0);
  int on = 0;
  for (int i = 0; i < 1000; ++i) on += c.choose() > 0;
  EXPECT_LE(on, 1000 / 16);  // only the probes
  EXPECT_GT(on, 0);          // but it keeps probing
  for (int i = 0; i < 200; ++i) c.observe_round(4, 4);
  EXPECT_EQ(c.choose(), 4);
  // Half the drafts accepted at each position: deeper is not worth it when drafts are costly.
  SpeculativeOptions o2;
  o2.draft_max = 8;
  DepthController d(o2);
  d.observe_draft_step(0.3);
  for (int n = 1; n <= 9; ++n) d.observe_verify(n, 1.0 + 0.05 * (n - 1));
  for (int i = 0; i < 200; ++i) {
    // Every position accepted with probability 0.5: deterministic pattern.
    d.observe_round(8, i % 2 == 0 ? 0 : (i % 4 == 1 ? 1 : 2));
  }
  const int k = d.choose();
  EXPECT_GE(k, 1);
  EXPECT_LE(k, 3);
  // Fixed depth when adaptive is off.
  SpeculativeOptions fixed;
  fixed.adaptive = false;
  fixed.draft_max = 3;
  DepthController f(fixed);
  EXPECT_EQ(f.choose(), 3);
  // Invalid options.
  SpeculativeOptions bad;
  bad.draft_min = 5;
  EXPECT_THROW(validate(bad), Error);
}

TEST(Speculative, OracleMtpCasesPass) {
  UG_REQUIRE_ORACLE(oracle);
  OracleOptions o;
  o.n_threads = 2;
  std::ostringstream log;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(oracle + "/mtp")) {
    if (is_mtp_case_file(e.path())) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  OracleSummary s;
  run_mtp_cases(files, o, log, &s);
  std::printf("%s", log.str().c_str());
  EXPECT_EQ(s.failed, 0) << log.str();
  EXPECT_EQ(s.passed, 7) << log.str();
}

}  // namespace
}  // namespace ug
