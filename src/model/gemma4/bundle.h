// Our single-file form of a multimodal model (docs/multimodal.md): a Gemma 4 text GGUF that also
// holds the mmproj's projector tensors and `clip.*` metadata, so one file serves text, images,
// audio and video.
#pragma once

#include <string>

namespace ug::gemma4 {

// Writes `out_path` from a text-model GGUF (`general.architecture = gemma4`) and an mmproj GGUF
// (`clip`, gemma4uv and/or gemma4ua). Validates first that the projector fits the text model's
// width and that no tensor names clash; writes through a temporary file. Throws ug::Error.
void write_bundle(const std::string& text_path, const std::string& mmproj_path,
                  const std::string& out_path);

}  // namespace ug::gemma4
