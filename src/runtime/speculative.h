// Speculative decoding with the MTP drafter (spec §4.3): k draft steps, one batched target pass
// over the k + 1 positions, greedy or rejection-sampling acceptance that preserves the target
// distribution exactly, KV rollback past the accepted prefix; the depth k is chosen per round from
// costs measured on this machine and running acceptance estimates (0 = plain decoding).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/gemma4/decoder.h"
#include "model/gemma4/drafter.h"
#include "runtime/sampler.h"

namespace ug {

struct SpeculativeOptions {
  int draft_max = 4;     // most drafts per round (1..16)
  int draft_min = 0;     // fewest drafts per round when adaptive (0 lets it switch itself off)
  bool adaptive = true;  // false: always draft_max
};

// Throws ug::Error naming the first invalid field.
void validate(const SpeculativeOptions& options);

// Chooses k to maximise expected tokens per second: E(k) / T(k) with
//   E(k) = 1 + sum_{j<=k} prod_{i<=j} a_i  (a_i: acceptance at draft position i given all before
//   were accepted) and T(k) = k * draft_step_cost + verify_cost(k + 1).
// Costs are running averages of measured seconds; acceptance estimates are decayed counts with a
// weak prior. While k = 0 wins, a one-draft probe runs now and then (with a growing interval) so
// the estimates can recover when the text becomes predictable.
class DepthController {
 public:
  explicit DepthController(const SpeculativeOptions& options);

  int choose();
  void observe_draft_step(double seconds);
  void observe_verify(int n_positions, double seconds);
  // A round that drafted k tokens of which the first n_accepted were accepted.
  void observe_round(int k, int n_accepted);

  double acceptance(int position) const;  // 0-based draft position
  double draft_cost() const { return draft_cost_; }
  double verify_cost(int n_positions) const;  // estimate, measured or extrapolated
  double expected_tokens(int k) const;
  double expected_rate(int k) const;  // tokens per second

 private:
  SpeculativeOptions options_;
  double draft_cost_ = -1;                // seconds per draft step; < 0 = not measured yet
  std::vector<double> verify_cost_;       // [n_positions] seconds; < 0 = not measured
  std::vector<double> accepted_, tried_;  // decayed counts per draft position
  int rounds_off_ = 0;                    // consecutive rounds with k = 0
  int probe_interval_ = 16;
};

// One draft-verify round.
struct SpeculativeRound {
  int n_past = 0;      // target positions in the cache before the round
  int32_t input = -1;  // the token fed first (not yet in the cache before the round)
  std::vector<int32_t> draft;
  std::vector<int32_t> emitted;  // accepted drafts, then the target's own token
  int n_accepted = 0;
};

struct SpeculativeStats {
  int64_t rounds = 0;
  int64_t drafted = 0;
  int64_t accepted = 0;
  int64_t emitted = 0;
  std::vector<int64_t> drafted_at;   // rounds that drafted position i
  std::vector<int64_t> accepted_at;  // rounds that accepted the draft at position i
  std::vector<int64_t> tried_at;     // rounds that drafted position i and accepted all before it
  std::vector<int64_t> rounds_at_depth;  // rounds per chosen k
  double draft_seconds = 0;
  double verify_seconds = 0;
};

// Generates from a target decoder, with or without a drafter, through one loop. State between
// rounds: the cache holds every context token but the last one, `pending`, which the next round
// feeds first; `hidden` is the target's post-final-norm hidden of the position before it (the one
// whose logits produced `pending`). With no drafter or no hidden, rounds are plain decode steps.
class SpeculativeGenerator {
 public:
  // `target`, `drafter` (may be null) and `sampler` must outlive the generator.
  SpeculativeGenerator(gemma4::Decoder& target, gemma4::Drafter* drafter, Sampler& sampler,
                       SpeculativeOptions options);

  // `history`: all context tokens so far, ending with the pending token (the cache must hold
  // history.size() - 1 positions). `hidden`: n_embd values or empty.
  void begin(std::vector<int32_t> history, std::span<const float> hidden);

  // Runs one round and returns it. `depth` < 0: the adaptive choice (or draft_max when adaptive is
  // off); otherwise exactly that many drafts (clamped to what the context and the KV rollback
  // allow, and to max_emit - 1). Emits between 1 and max_emit tokens.
  SpeculativeRound round(int depth = -1, int max_emit = 1 << 30);

  // Benchmark hook for controlled acceptance (greedy only; round() throws when sampling): replaces
  // draft i of a round after the drafter proposed it, so the drafter's cost stays real.
  // `n_history` is history().size() at the start of the round; the token at history index
  // n_history + i is what draft i proposes. The replacement also feeds the next draft step.
  using DraftOverride = std::function<int32_t(size_t n_history, int i, int32_t proposed)>;
  void set_draft_override(DraftOverride f) { draft_override_ = std::move(f); }

  const std::vector<int32_t>& history() const { return history_; }
  int32_t pending() const { return history_.back(); }
  const SpeculativeStats& stats() const { return stats_; }
  DepthController& controller() { return controller_; }

 private:
  int clamp_depth(int k, int max_emit) const;

  gemma4::Decoder& target_;
  gemma4::Drafter* drafter_;
  Sampler& sampler_;
  SpeculativeOptions options_;
  DepthController controller_;
  SpeculativeStats stats_;
  std::vector<int32_t> history_;
  std::vector<float> hidden_;
  DraftOverride draft_override_;
  // Scratch.
  std::vector<float> draft_logits_, draft_hidden_, next_hidden_;
  std::vector<std::vector<float>> draft_probs_;
  std::vector<float> target_probs_;
  gemma4::Output out_;
};

}  // namespace ug
