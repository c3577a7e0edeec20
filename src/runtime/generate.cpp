#include "runtime/generate.h"

#include <algorithm>
#include <limits>

namespace ug {

int32_t greedy_pick(const float* logits, int n_vocab, const std::vector<int>& suppress) {
  int32_t best = -1;
  float best_value = -std::numeric_limits<float>::infinity();
  for (int i = 0; i < n_vocab; ++i) {
    if (logits[i] > best_value || best < 0) {
      if (std::find(suppress.begin(), suppress.end(), i) != suppress.end()) continue;
      if (best >= 0 && !(logits[i] > best_value)) continue;
      best = i;
      best_value = logits[i];
    }
  }
  return best;
}

std::vector<int32_t> greedy_continue(gemma4::Decoder& decoder, const float* logits,
                                     const GreedyOptions& options) {
  const int n_vocab = decoder.model().config.n_vocab;
  std::vector<float> current(logits, logits + n_vocab);
  std::vector<int32_t> out;
  gemma4::Output step;
  while (int(out.size()) < options.max_tokens) {
    const int32_t tok = greedy_pick(current.data(), n_vocab, options.suppress);
    out.push_back(tok);
    if (options.on_token && !options.on_token(tok)) break;
    if (std::find(options.stop.begin(), options.stop.end(), tok) != options.stop.end()) break;
    if (int(out.size()) >= options.max_tokens) break;
    if (decoder.n_past() >= decoder.cache().n_ctx()) break;
    decoder.eval_tokens({tok}, gemma4::Outputs::kLast, &step);
    current.assign(step.logits.begin(), step.logits.end());
  }
  return out;
}

}  // namespace ug
