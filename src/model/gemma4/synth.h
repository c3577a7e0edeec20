// Random-weight Gemma 4 models with the exact tensor list of a real one (`unigemma synth`), so the
// 12B shape can be benchmarked without downloading it, and the engine has a self-made default
// model.
#pragma once

#include <cstdint>
#include <string>

#include "format/tensor_type.h"

namespace ug::gemma4 {

struct SynthOptions {
  std::string shape = "tiny";  // "12b" (Gemma 4 12B Unified) or "tiny" (6 layers, hidden 256)
  TensorType type = TensorType::Q8_0;
  uint64_t seed = 1234;
  bool drafter = false;  // write the shape's MTP drafter (`gemma4-assistant`) instead of the model
};

// Writes a GGUF with the chosen shape: matrices in `type` (for Q4_0 the tied embedding is Q6_K, as
// llama-quantize stores it), norms/scales/rope_freqs in F32, a synthetic gemma4 vocabulary whose
// special tokens have their real text. Weights are random with realistic scales.
void write_synthetic_model(const SynthOptions& options, const std::string& path);

// Writes a random-weight MTP drafter with the tensor list of the real one (spec §4.5) for the
// chosen target shape: "12b" has the 12B assistant's shapes (hidden 1024, FFN 8192, 4 layers,
// 16 query heads reading the target's 8 x 256 sliding and 1 x 512 full KV, vocabulary 262144),
// "tiny" the oracle's tiny assistant (hidden 128, FFN 512, 4 query heads, vocabulary 4198). It
// runs with the synthetic target of the same shape. Same type rule as write_synthetic_model.
void write_synthetic_drafter(const SynthOptions& options, const std::string& path);

}  // namespace ug::gemma4
