// NeoX rotary position embedding (spec §1.4), shared by the decoder and the MTP drafter so the
// drafter's queries rotate exactly like the target's keys it attends to.
#pragma once

#include <vector>

namespace ug::gemma4 {

// cs[2j], cs[2j+1] = cos, sin of pos * inv_freq[j] (fp32, as the reference computes them).
void rope_table(int pos, const std::vector<float>& inv_freq, float* cs);

// Rotates the pair (j, j + head_dim/2) of `x` by the angle in cs[2j..2j+1].
void rope(float* x, int head_dim, const float* cs);

}  // namespace ug::gemma4
