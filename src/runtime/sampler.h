// Token sampling: penalties, suppression, temperature, top-k, top-p, min-p, then a seeded draw.
//
// Order of transforms (the Hugging Face / vLLM order, which Gemma's published settings assume):
//   1. suppressed ids -> -inf (never sampled, not even by greedy decoding)
//   2. penalties over the last `penalty_last_n` history tokens (llama.cpp / OpenAI semantics):
//      repetition: positive logits divided by the penalty, negative ones multiplied (once per id);
//      presence: subtract once per id seen; frequency: subtract count * penalty
//   3. temperature 0 -> greedy argmax (ties -> lowest id); otherwise logits / temperature
//   4. top-k (0 = off), 5. top-p (1 = off), 6. min-p relative to the top probability (0 = off)
//   7. renormalise and draw with a fixed-algorithm RNG (xoshiro256**), so a seed gives the same
//      tokens on every platform and standard library.
// probabilities() exposes the distribution of step 7, exactly the one sample() draws from.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace ug {

struct SamplerParams {
  // Gemma 4 instruction-tuned defaults (Google's model card / generation_config).
  float temperature = 1.0f;         // 0 = greedy
  int32_t top_k = 64;               // <= 0 = off
  float top_p = 0.95f;              // 1 = off; 0 keeps only the most likely token
  float min_p = 0.0f;               // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t penalty_last_n = 64;  // history window for penalties; 0 = none, -1 = whole history
  uint64_t seed = 0;
};

// Throws ug::Error naming the first out-of-range field ("sampler: top_p must be in [0, 1], got 2").
void validate(const SamplerParams& params);

// Overrides fields with the model's recommended values where it publishes them. `lookup` returns
// the numeric metadata value for a key, or nullopt when absent; the keys are llama.cpp's
// `general.sampling.*` (temp, top_k, top_p, min_p, penalty_last_n, penalty_repeat,
// penalty_present, penalty_freq). Use with a GGUF file as
// `[&](std::string_view k) { return file.opt_float(k); }`.
using MetadataLookup = std::function<std::optional<double>(std::string_view key)>;
void apply_model_sampling_defaults(const MetadataLookup& lookup, SamplerParams& params);

// xoshiro256** seeded through splitmix64: small, fast, identical everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next_u64();
  double uniform();  // [0, 1) with 53 random bits
 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  // `suppressed_ids`: ids that are never sampled (e.g. <image|>, <audio|>); out-of-range ids are
  // ignored. Throws ug::Error for invalid params.
  explicit Sampler(SamplerParams params = {}, std::vector<int32_t> suppressed_ids = {});

  const SamplerParams& params() const { return params_; }
  const std::vector<int32_t>& suppressed_ids() const { return suppressed_; }
  void reseed(uint64_t seed) { rng_.reseed(seed); }

  // Picks the next token. `history`: the tokens so far (prompt and/or generated, the caller
  // decides), used only by the penalties. Throws ug::Error if `logits` is empty or no token can
  // be sampled (all suppressed / -inf).
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  // The final distribution after every transform, dense over the vocabulary (zeros outside the
  // kept set; one-hot for greedy). sample() with the same inputs draws from exactly this.
  void probabilities(std::span<const float> logits, std::span<const int32_t> history,
                     std::vector<float>& probs_out);

  // Draws from an explicit dense distribution (need not be normalised; negatives count as 0),
  // e.g. the residual max(0, p - q) of speculative sampling. Throws ug::Error if it sums to 0.
  int32_t sample_from(std::span<const float> probs);

  // The next uniform draw in [0, 1) from this sampler's stream (speculative acceptance tests).
  double uniform() { return rng_.uniform(); }

 private:
  struct Candidate {
    float logit;
    int32_t id;
  };
  // Fills work_ with the penalised, suppressed logits (NaN -> -inf, +inf -> FLT_MAX).
  void prepare_logits(std::span<const float> logits, std::span<const int32_t> history);
  int32_t greedy_pick() const;
  // Fills cand_ / weight_ with the kept candidates and unnormalised weights; returns their sum.
  double build_distribution();
  template <class WeightOf>
  void cut_sorted_top_p(const WeightOf& weight_of);
  template <class WeightOf>
  void cut_unsorted_top_p(float max_logit, double inv_temp, const WeightOf& weight_of);

  SamplerParams params_;
  std::vector<int32_t> suppressed_;
  Rng rng_;
  // Scratch reused across calls so steady-state sampling does not allocate.
  std::vector<float> work_;
  std::vector<Candidate> cand_;
  std::vector<double> weight_;
  std::vector<int32_t> window_;
  std::vector<double> bucket_mass_;
  std::vector<Candidate> boundary_;
};

}  // namespace ug
