// Plain greedy generation over a decoder (sampling and chat live in the session layer).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/gemma4/decoder.h"

namespace ug {

struct GreedyOptions {
  int max_tokens = 16;
  std::vector<int> suppress;  // never chosen
  std::vector<int> stop;      // generation ends after emitting one of these
  // Called with each generated token; return false to stop early.
  std::function<bool(int32_t)> on_token;
};

// Argmax of logits over the vocabulary, skipping `suppress`.
int32_t greedy_pick(const float* logits, int n_vocab, const std::vector<int>& suppress);

// Continues from `logits` (the distribution after the decoder's last position), feeding each chosen
// token back through the single-token decode path. Returns the generated ids.
std::vector<int32_t> greedy_continue(gemma4::Decoder& decoder, const float* logits,
                                     const GreedyOptions& options);

}  // namespace ug
