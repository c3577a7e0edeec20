// Scaled-dot-product attention of one layer's queries against its KV cache, with Gemma 4's masks
// (spec §1.6): causal; sliding layers see only keys with |q - k| < window; on sliding layers the
// positions of one bidirectional block (an image or video frame) also see each other's future
// positions, clamped to the window. Full layers stay causal. Scale is 1.0 (QK-norm does the
// scaling).
#pragma once

#include <cstdint>

#include "kernels/thread_pool.h"
#include "model/gemma4/config.h"
#include "model/gemma4/kv_cache.h"

namespace ug::gemma4 {

// Key range [first, last] (inclusive) a query at `pos` may attend to. `block_end` is the position
// of the last token of the query's bidirectional block, or -1 when the query is not in one.
struct KeyRange {
  int first;
  int last;
};
KeyRange allowed_keys(bool sliding, int window, int pos, int block_end);

// q: [n][n_head * head_dim] (normed, rotated); out: same shape. block_end: per query, or null.
void attend(const KvCache& cache, int layer, const LayerConfig& lc, int window, const float* q,
            int pos0, int n, const int32_t* block_end, float* out, ThreadPool& pool);

}  // namespace ug::gemma4
