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
  // kText: the text model; kProjector: an mmproj GGUF (`clip`, gemma4uv + gemma4ua, spec §7.3) for
  // that shape; kBundle: one GGUF with the text model and the projector tensors.
  enum class Content { kText, kProjector, kBundle } content = Content::kText;
  bool drafter = false;  // write the shape's MTP drafter (`gemma4-assistant`) instead of the model
  int layers = 0;        // > 0: only the first `layers` decoder layers of the shape (a slice)
};

// Writes a GGUF with the chosen shape: matrices in `type` (for Q4_0 the tied embedding is Q6_K, as
// llama-quantize stores it), norms/scales/rope_freqs in F32, a synthetic gemma4 vocabulary whose
// special tokens have their real text. Weights are random with realistic scales. Projector
// matrices use `type` when it is F32/F16/BF16 and BF16 otherwise (as released mmproj files);
// their norms and the position table are F32.
void write_synthetic_model(const SynthOptions& options, const std::string& path);

// Writes the same shape as a Hugging Face folder (`unigemma synth --format safetensors`):
// config.json (Gemma4UnifiedForConditionalGeneration), generation_config.json, tokenizer.json and
// tokenizer_config.json for the synthetic vocabulary, and the weights (text decoder plus vision and
// audio embedders, HF names and shapes, spec §7.1) in `options.type` (F32, F16 or BF16) as
// safetensors shards of at most ~4 GB with a model.safetensors.index.json. Streams: memory use is
// independent of the model size. Existing files of the same names in `dir` are replaced.
void write_synthetic_hf(const SynthOptions& options, const std::string& dir);
// Writes a random-weight MTP drafter with the tensor list of the real one (spec §4.5) for the
// chosen target shape: "12b" has the 12B assistant's shapes (hidden 1024, FFN 8192, 4 layers,
// 16 query heads reading the target's 8 x 256 sliding and 1 x 512 full KV, vocabulary 262144),
// "tiny" the oracle's tiny assistant (hidden 128, FFN 512, 4 query heads, vocabulary 4198). It
// runs with the synthetic target of the same shape. Same type rule as write_synthetic_model.
void write_synthetic_drafter(const SynthOptions& options, const std::string& path);

}  // namespace ug::gemma4
