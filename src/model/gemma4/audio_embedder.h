// The encoder-free audio embedder of Gemma 4 12B Unified (spec §3.2): per 640-sample frame,
// RMSNorm without weight, then a linear projection into the text embedding space.
#pragma once

#include <vector>

#include "kernels/kernels.h"

namespace ug::gemma4 {

struct AudioEmbedder {
  int frame = 640;
  int n_out = 0;
  kernels::Matrix proj;  // [n_out rows][frame]
  float rms_eps = 1e-6f;
};

// Embeds n frames ([n][frame] samples). Returns [n][n_out].
std::vector<float> embed_audio_frames(const AudioEmbedder& e, const float* frames, int n,
                                      ThreadPool& pool);

}  // namespace ug::gemma4
