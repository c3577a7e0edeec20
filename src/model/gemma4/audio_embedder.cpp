#include "model/gemma4/audio_embedder.h"

namespace ug::gemma4 {

std::vector<float> embed_audio_frames(const AudioEmbedder& e, const float* frames, int n,
                                      ThreadPool& pool) {
  std::vector<float> normed(frames, frames + size_t(n) * e.frame);
  for (int i = 0; i < n; ++i) {
    float* f = &normed[size_t(i) * e.frame];
    kernels::rms_norm(f, nullptr, f, e.frame, e.rms_eps);
  }
  std::vector<float> out(size_t(n) * e.n_out);
  kernels::matmul(e.proj, normed.data(), e.frame, n, out.data(), e.n_out, pool);
  return out;
}

}  // namespace ug::gemma4
