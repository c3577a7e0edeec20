#include "model/gemma4/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/kernels.h"

namespace ug::gemma4 {

KeyRange allowed_keys(bool sliding, int window, int pos, int block_end) {
  KeyRange r{0, pos};
  if (!sliding) return r;  // full layers: strictly causal, whole prefix
  r.first = std::max(0, pos - window + 1);
  if (block_end > pos) r.last = std::min(block_end, pos + window - 1);
  return r;
}

void attend(const KvCache& cache, int layer, const LayerConfig& lc, int window, const float* q,
            int pos0, int n, const int32_t* block_end, float* out, ThreadPool& pool) {
  const int hd = lc.head_dim;
  const int q_dim = lc.n_head * hd;
  const int group = lc.n_head / lc.n_kv_head;
  const TensorType type = cache.layer(layer).type;
  const int64_t n_tasks = int64_t(n) * lc.n_head;
  pool.parallel_for(n_tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t task = begin; task < end; ++task) {
      const int t = int(task / lc.n_head);
      const int h = int(task % lc.n_head);
      const int g = h / group;
      const int pos = pos0 + t;
      const KeyRange keys = allowed_keys(lc.sliding, window, pos, block_end ? block_end[t] : -1);
      const float* qh = q + int64_t(t) * q_dim + int64_t(h) * hd;
      const int n_keys = keys.last - keys.first + 1;
      scores.resize(size_t(n_keys));
      for (int j = 0; j < n_keys; ++j) {
        scores[size_t(j)] = kernels::dot_row(type, cache.k_row(layer, keys.first + j, g), qh, hd);
      }
      kernels::softmax(scores.data(), n_keys);
      float* oh = out + int64_t(t) * q_dim + int64_t(h) * hd;
      std::fill(oh, oh + hd, 0.0f);
      for (int j = 0; j < n_keys; ++j) {
        kernels::axpy_row(type, cache.v_row(layer, keys.first + j, g), scores[size_t(j)], oh, hd);
      }
    }
  });
}

}  // namespace ug::gemma4
