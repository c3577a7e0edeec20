// The one table of Gemma 4 tensor names: Hugging Face safetensors names (spec §7.1, both naming
// variants) and their llama.cpp GGUF counterparts (spec §7.2, §7.3, §4.5). Used by the loaders of
// both formats and by `unigemma convert`.
#pragma once

#include <string>

namespace ug {
class SafetensorsModel;
}

namespace ug::gemma4 {

enum class LayerTensor {
  kAttnNorm,
  kQ,
  kK,
  kV,
  kO,
  kQNorm,
  kKNorm,
  kPostAttnNorm,
  kFfnNorm,
  kGate,
  kUp,
  kDown,
  kPostFfwNorm,
  kOutputScale,
};
inline constexpr LayerTensor kAllLayerTensors[] = {
    LayerTensor::kAttnNorm,    LayerTensor::kQ,
    LayerTensor::kK,           LayerTensor::kV,
    LayerTensor::kO,           LayerTensor::kQNorm,
    LayerTensor::kKNorm,       LayerTensor::kPostAttnNorm,
    LayerTensor::kFfnNorm,     LayerTensor::kGate,
    LayerTensor::kUp,          LayerTensor::kDown,
    LayerTensor::kPostFfwNorm, LayerTensor::kOutputScale,
};
// True for the 2-D projection weights (everything else per layer is a 1-D norm or scale).
bool is_layer_matrix(LayerTensor t);

// "blk.<layer>.attn_q.weight", ... (text model and drafter GGUF).
std::string gguf_layer_tensor(int layer, LayerTensor t);
// "<prefix>layers.<layer>.self_attn.q_proj.weight", ...; prefix "model.language_model." (text,
// current naming), "model." (text as re-saved, and the drafter).
std::string hf_layer_tensor(const std::string& prefix, int layer, LayerTensor t);

// The text model's HF prefix in `st` ("model.language_model." or "model.").
std::string hf_text_prefix(const SafetensorsModel& st);

// Drafter-only tensors.
inline constexpr const char* kGgufDrafterPreProjection = "nextn.pre_projection.weight";
inline constexpr const char* kGgufDrafterPostProjection = "nextn.post_projection.weight";
inline constexpr const char* kHfDrafterPreProjection = "pre_projection.weight";
inline constexpr const char* kHfDrafterPostProjection = "post_projection.weight";
// In a bundle GGUF the drafter's tensors carry this prefix (its metadata is already separate:
// `gemma4-assistant.*` keys), see docs/bundle-gguf.md.
inline constexpr const char* kBundleDrafterPrefix = "mtp.";

// Multimodal embedder tensors (vision `gemma4uv`, audio `gemma4ua`).
struct ProjectorNames {
  std::string ln1_w, ln1_b, dense_w, dense_b, ln2_w, ln2_b, pos, ln3_w, ln3_b, proj, audio_proj;
};
const ProjectorNames& gguf_projector_names();
// HF names in whichever variant `st` uses (model.vision_embedder.* or model.embed_vision.*).
ProjectorNames hf_projector_names(const SafetensorsModel& st);

}  // namespace ug::gemma4
