#include "model/gemma4/config.h"

#include <algorithm>

namespace ug::gemma4 {

int Config::max_head_dim() const {
  int m = 0;
  for (const auto& l : layers) m = std::max(m, l.head_dim);
  return m;
}
int Config::max_q_dim() const {
  int m = 0;
  for (const auto& l : layers) m = std::max(m, l.n_head * l.head_dim);
  return m;
}
int Config::max_kv_dim() const {
  int m = 0;
  for (const auto& l : layers) m = std::max(m, l.n_kv_head * l.head_dim);
  return m;
}
int Config::max_ff() const {
  int m = 0;
  for (const auto& l : layers) m = std::max(m, l.n_ff);
  return m;
}
int Config::last_sliding_layer() const {
  for (int i = n_layer - 1; i >= 0; --i) {
    if (layers[size_t(i)].sliding) return i;
  }
  return -1;
}
int Config::last_full_layer() const {
  for (int i = n_layer - 1; i >= 0; --i) {
    if (!layers[size_t(i)].sliding) return i;
  }
  return -1;
}

}  // namespace ug::gemma4
