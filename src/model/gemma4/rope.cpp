#include "model/gemma4/rope.h"

#include <cmath>

namespace ug::gemma4 {

void rope_table(int pos, const std::vector<float>& inv_freq, float* cs) {
  for (size_t j = 0; j < inv_freq.size(); ++j) {
    const float theta = float(pos) * inv_freq[j];
    cs[2 * j] = std::cos(theta);
    cs[2 * j + 1] = std::sin(theta);
  }
}

void rope(float* x, int head_dim, const float* cs) {
  const int half = head_dim / 2;
  for (int j = 0; j < half; ++j) {
    const float c = cs[2 * j];
    const float s = cs[2 * j + 1];
    const float x0 = x[j];
    const float x1 = x[j + half];
    x[j] = x0 * c - x1 * s;
    x[j + half] = x0 * s + x1 * c;
  }
}

}  // namespace ug::gemma4
