// Loading the multimodal projector weights (vision + audio embedders) from an mmproj GGUF
// (`gemma4uv` / `gemma4ua`, spec §7.3), a GGUF bundle holding the text model and the projector
// tensors, or a Hugging Face safetensors folder (both naming variants of spec §7.1).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "model/gemma4/audio_embedder.h"
#include "model/gemma4/vision_embedder.h"

namespace ug {
class SafetensorsModel;
}
namespace ug::gguf {
class File;
}

namespace ug::gemma4 {

struct Projector {
  std::string path;
  std::optional<VisionEmbedder> vision;
  std::optional<AudioEmbedder> audio;
  // Soft tokens per image the model was made for: GGUF `clip.vision.max_soft_tokens`, HF
  // `max_soft_tokens` of processor_config.json / preprocessor_config.json. 0: not given (the
  // engine's default, 280, applies).
  int default_image_tokens = 0;
  // Keep the mappings alive.
  std::shared_ptr<gguf::File> gguf;
  std::shared_ptr<SafetensorsModel> safetensors;
  std::vector<std::vector<uint8_t>> owned;
};

// `path`: a .gguf file (mmproj or bundle) or an HF folder. `n_embd` (> 0) is the text model's
// embedding width the projections must produce. Throws ug::Error naming file and tensor; a file
// with neither vision nor audio tensors is an error.
std::unique_ptr<Projector> load_projector(const std::string& path, int n_embd);

// True when a GGUF/HF model at `path` also carries projector tensors (a bundle).
bool has_projector_tensors(const std::string& path);

}  // namespace ug::gemma4
