// The encoder-free vision embedder of Gemma 4 12B Unified (spec §2.3): per 48x48 patch,
// LayerNorm -> dense+bias -> LayerNorm -> + x/y position rows -> LayerNorm -> RMSNorm (no weight)
// -> projection into the text model's embedding space. No mixing between patches.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/kernels.h"

namespace ug::gemma4 {

struct VisionEmbedder {
  int patch_values = 6912;  // 48 * 48 * 3
  int n_mm = 0;             // mm_embed_dim (3840 in the 12B)
  int n_out = 0;            // text n_embd
  int n_pos = 0;            // rows of each position table (1120)
  // GGUF (llama.cpp converter) stores patch_embd columns and patch_norm.1 in CHW patch order;
  // HF stores them in HWC order. Inputs are always HWC; they are permuted when this is set.
  bool chw_columns = false;
  kernels::Matrix dense;  // [n_mm rows][patch_values]
  kernels::Matrix proj;   // [n_out rows][n_mm]
  // Position table rows: x (column) of position p at row pos_row(0, p), y (row) at pos_row(1, p).
  kernels::Matrix pos;  // [2 * n_pos rows][n_mm]
  bool pos_axis_major =
      true;  // GGUF {n_mm, n_pos, 2}: axis*n_pos + p; HF [n_pos, 2, n_mm]: p*2 + axis
  std::vector<float> ln1_w, ln1_b, dense_b, ln2_w, ln2_b, ln3_w, ln3_b;
  float ln_eps = 1e-5f;  // PyTorch LayerNorm default (the metadata's 1e-6 is for the RMSNorm)
  float rms_eps = 1e-6f;

  int64_t pos_row(int axis, int p) const {
    return pos_axis_major ? int64_t(axis) * n_pos + p : int64_t(p) * 2 + axis;
  }
};

// Embeds n patches (each patch_values floats in HWC order, values in [0,1]) at grid positions
// (pos_x[i], pos_y[i]). Returns [n][n_out]. Throws ug::Error for positions outside the table.
std::vector<float> embed_patches(const VisionEmbedder& e, const float* patches,
                                 const int32_t* pos_x, const int32_t* pos_y, int n,
                                 ThreadPool& pool);

// LayerNorm over n values with weight and bias (mean/variance accumulated in double).
void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, float eps);

}  // namespace ug::gemma4
