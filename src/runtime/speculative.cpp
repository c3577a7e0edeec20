#include "runtime/speculative.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "util/error.h"

namespace ug {

namespace {

constexpr int kMaxDepth = 16;
// Acceptance counts decay so the estimate follows the text (code, prose, repetition...).
constexpr double kDecay = 0.97;
// Beta prior on each acceptance rate: mean 0.5, weight of one observation.
constexpr double kPriorAccept = 0.5;
constexpr double kPriorWeight = 1.0;
// Running-average weight of a new cost measurement.
constexpr double kCostWeight = 0.2;
// Without a measurement for n > 1 positions, assume each extra position costs this fraction of a
// one-position pass (memory-bound CPU decode: weights are read once for all positions).
constexpr double kAssumedExtraPosition = 0.1;
constexpr int kProbeIntervalMin = 16;
constexpr int kProbeIntervalMax = 256;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int32_t argmax(const float* x, int n) {
  return int32_t(std::max_element(x, x + n) - x);
}

}  // namespace

void validate(const SpeculativeOptions& o) {
  if (o.draft_max < 0 || o.draft_max > kMaxDepth) {
    throw Error("speculative: draft-max must be in [0, " + std::to_string(kMaxDepth) + "], got " +
                std::to_string(o.draft_max));
  }
  if (o.draft_min < 0 || o.draft_min > o.draft_max) {
    throw Error("speculative: draft-min must be in [0, draft-max = " + std::to_string(o.draft_max) +
                "], got " + std::to_string(o.draft_min));
  }
}

DepthController::DepthController(const SpeculativeOptions& options)
    : options_(options),
      verify_cost_(size_t(kMaxDepth + 2), -1.0),
      accepted_(size_t(kMaxDepth), 0.0),
      tried_(size_t(kMaxDepth), 0.0) {
  validate(options_);
}

void DepthController::observe_draft_step(double seconds) {
  draft_cost_ = draft_cost_ < 0 ? seconds : draft_cost_ + kCostWeight * (seconds - draft_cost_);
}

void DepthController::observe_verify(int n, double seconds) {
  if (n < 1 || n >= int(verify_cost_.size())) return;
  double& c = verify_cost_[size_t(n)];
  c = c < 0 ? seconds : c + kCostWeight * (seconds - c);
}

void DepthController::observe_round(int k, int n_accepted) {
  // Position i was tried when all drafts before it were accepted.
  for (int i = 0; i < k && i < kMaxDepth && i <= n_accepted; ++i) {
    tried_[size_t(i)] = tried_[size_t(i)] * kDecay + 1.0;
    accepted_[size_t(i)] = accepted_[size_t(i)] * kDecay + (i < n_accepted ? 1.0 : 0.0);
  }
}

double DepthController::acceptance(int i) const {
  if (i < 0 || i >= kMaxDepth) return 0;
  return (accepted_[size_t(i)] + kPriorAccept * kPriorWeight) / (tried_[size_t(i)] + kPriorWeight);
}

double DepthController::verify_cost(int n) const {
  if (n < 1 || n >= int(verify_cost_.size())) return -1;
  if (verify_cost_[size_t(n)] >= 0) return verify_cost_[size_t(n)];
  const double c1 = verify_cost_[1];
  if (c1 < 0) return -1;
  // Linear in n through the single-position cost and the largest measured n, else the assumption.
  for (int m = int(verify_cost_.size()) - 1; m > 1; --m) {
    if (verify_cost_[size_t(m)] >= 0) {
      const double slope = std::max(0.0, (verify_cost_[size_t(m)] - c1) / double(m - 1));
      return c1 + slope * double(n - 1);
    }
  }
  return c1 * (1.0 + kAssumedExtraPosition * double(n - 1));
}

double DepthController::expected_tokens(int k) const {
  double e = 1, run = 1;
  for (int i = 0; i < k; ++i) {
    run *= acceptance(i);
    e += run;
  }
  return e;
}

double DepthController::expected_rate(int k) const {
  const double v = verify_cost(k + 1);
  if (v < 0 || (k > 0 && draft_cost_ < 0)) return -1;
  const double t = double(k) * std::max(0.0, draft_cost_) + v;
  return t > 0 ? expected_tokens(k) / t : -1;
}

int DepthController::choose() {
  if (!options_.adaptive) return options_.draft_max;
  // Measure before deciding: one plain step, then one drafted round.
  if (verify_cost_[1] < 0 && options_.draft_min == 0) return 0;
  if (draft_cost_ < 0) return std::max(1, options_.draft_min);
  int best = options_.draft_min;
  double best_rate = -1;
  for (int k = options_.draft_min; k <= options_.draft_max; ++k) {
    const double r = expected_rate(k);
    if (r > best_rate) {
      best_rate = r;
      best = k;
    }
  }
  if (best > 0) {
    rounds_off_ = 0;
    probe_interval_ = kProbeIntervalMin;
    return best;
  }
  if (++rounds_off_ >= probe_interval_ && options_.draft_max > 0) {
    rounds_off_ = 0;
    probe_interval_ = std::min(probe_interval_ * 2, kProbeIntervalMax);
    return 1;
  }
  return 0;
}

SpeculativeGenerator::SpeculativeGenerator(gemma4::Decoder& target, gemma4::Drafter* drafter,
                                           Sampler& sampler, SpeculativeOptions options)
    : target_(target),
      drafter_(drafter),
      sampler_(sampler),
      options_(options),
      controller_(options) {
  const int V = target.model().config.n_vocab;
  const int HT = target.model().config.n_embd;
  draft_logits_.resize(size_t(V));
  draft_hidden_.resize(size_t(HT));
  next_hidden_.resize(size_t(HT));
  stats_.drafted_at.assign(size_t(kMaxDepth), 0);
  stats_.accepted_at.assign(size_t(kMaxDepth), 0);
  stats_.tried_at.assign(size_t(kMaxDepth), 0);
  stats_.rounds_at_depth.assign(size_t(kMaxDepth + 1), 0);
}

void SpeculativeGenerator::begin(std::vector<int32_t> history, std::span<const float> hidden) {
  if (history.empty()) throw Error("speculative: empty history");
  if (int64_t(history.size()) - 1 != target_.n_past()) {
    throw Error("speculative: the cache holds " + std::to_string(target_.n_past()) +
                " positions, expected all " + std::to_string(history.size()) +
                " history tokens but the last");
  }
  const size_t HT = size_t(target_.model().config.n_embd);
  if (!hidden.empty() && hidden.size() != HT) throw Error("speculative: hidden has the wrong size");
  history_ = std::move(history);
  hidden_.assign(hidden.begin(), hidden.end());
}

int SpeculativeGenerator::clamp_depth(int k, int max_emit) const {
  if (!drafter_ || hidden_.empty() || target_.n_past() < 1) return 0;
  k = std::min({k, kMaxDepth, max_emit - 1, target_.cache().n_ctx() - target_.n_past() - 1,
                target_.cache().rollback_limit()});
  return std::max(k, 0);
}

SpeculativeRound SpeculativeGenerator::round(int depth, int max_emit) {
  if (history_.empty()) throw Error("speculative: begin() was not called");
  const gemma4::Config& tc = target_.model().config;
  const int V = tc.n_vocab;
  const size_t HT = size_t(tc.n_embd);
  const bool greedy = sampler_.params().temperature <= 0;
  if (draft_override_ && !greedy) {
    throw Error("speculative: draft override needs greedy sampling (temperature 0)");
  }
  SpeculativeRound r;
  r.n_past = target_.n_past();
  r.input = history_.back();
  const int k = clamp_depth(depth < 0 ? controller_.choose() : depth, std::max(1, max_emit));

  // Draft k tokens at the position the input token will occupy (oracle: p = n_past).
  std::vector<int32_t>& hist = history_;  // grows by the drafts, trimmed back below
  const size_t base = hist.size();
  if (k > 0) {
    if (draft_probs_.size() < size_t(k)) draft_probs_.resize(size_t(k));
    const float* h = hidden_.data();
    int32_t x = r.input;
    for (int i = 0; i < k; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      drafter_->step(target_.cache(), r.n_past, x, h, draft_logits_.data(), draft_hidden_.data());
      int32_t d;
      if (greedy) {
        d = argmax(draft_logits_.data(), V);
      } else {
        sampler_.probabilities(draft_logits_, hist, draft_probs_[size_t(i)]);
        d = sampler_.sample_from(draft_probs_[size_t(i)]);
      }
      if (draft_override_) d = draft_override_(base, i, d);
      const double dt = seconds_since(t0);
      controller_.observe_draft_step(dt);
      stats_.draft_seconds += dt;
      r.draft.push_back(d);
      hist.push_back(d);
      x = d;
      next_hidden_.swap(draft_hidden_);
      h = next_hidden_.data();
    }
    hist.resize(base);
  }

  // Verify: one target pass over [input, d1..dk].
  std::vector<int32_t> tokens;
  tokens.reserve(size_t(k) + 1);
  tokens.push_back(r.input);
  tokens.insert(tokens.end(), r.draft.begin(), r.draft.end());
  const auto t0 = std::chrono::steady_clock::now();
  target_.eval_tokens(tokens, k > 0 ? gemma4::Outputs::kAll : gemma4::Outputs::kLast, &out_);
  const double verify_seconds = seconds_since(t0);
  controller_.observe_verify(k + 1, verify_seconds);

  // Accept the longest valid prefix, then the target's own token (or the bonus token).
  int32_t y = -1;
  int a = 0;
  for (int i = 0; i <= k; ++i) {
    const std::span<const float> row(out_.logits.data() + size_t(i) * size_t(V), size_t(V));
    if (i == k || greedy) {
      y = sampler_.sample(row, hist);
      if (i < k && y == r.draft[size_t(i)]) {
        ++a;
        hist.push_back(y);
        continue;
      }
      break;
    }
    // Rejection sampling (fp32 probabilities, ratio test without division).
    sampler_.probabilities(row, hist, target_probs_);
    const std::vector<float>& q = draft_probs_[size_t(i)];
    const int32_t x = r.draft[size_t(i)];
    if (sampler_.uniform() * double(q[size_t(x)]) < double(target_probs_[size_t(x)])) {
      ++a;
      hist.push_back(x);
      continue;
    }
    // Rejected: draw from the residual max(0, p - q); if rounding left it empty, p == q anyway.
    double mass = 0;
    for (int j = 0; j < V; ++j) {
      const float res = std::max(0.0f, target_probs_[size_t(j)] - q[size_t(j)]);
      mass += res;
      target_probs_[size_t(j)] = res;
    }
    if (mass > 0) {
      y = sampler_.sample_from(target_probs_);
    } else {
      sampler_.probabilities(row, hist, target_probs_);
      y = sampler_.sample_from(target_probs_);
    }
    break;
  }
  hist.resize(base);

  r.n_accepted = a;
  r.emitted.assign(r.draft.begin(), r.draft.begin() + a);
  r.emitted.push_back(y);
  // Keep the input and the accepted drafts; forget the rejected ones.
  target_.cache().truncate(r.n_past + a + 1);
  const size_t row = k > 0 ? size_t(a) : 0;
  hidden_.assign(out_.hidden.begin() + std::ptrdiff_t(row * HT),
                 out_.hidden.begin() + std::ptrdiff_t((row + 1) * HT));
  history_.insert(history_.end(), r.emitted.begin(), r.emitted.end());

  controller_.observe_round(k, a);
  ++stats_.rounds;
  stats_.drafted += k;
  stats_.accepted += a;
  stats_.emitted += int64_t(r.emitted.size());
  for (int i = 0; i < k; ++i) {
    ++stats_.drafted_at[size_t(i)];
    if (i <= a) ++stats_.tried_at[size_t(i)];
    if (i < a) ++stats_.accepted_at[size_t(i)];
  }
  ++stats_.rounds_at_depth[size_t(k)];
  stats_.verify_seconds += verify_seconds;
  return r;
}

}  // namespace ug
