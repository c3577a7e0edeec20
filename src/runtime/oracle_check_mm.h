// check-oracle case types for the multimodal pack (README-multimodal.md): vision preprocessing,
// vision embedder, audio decoding + embedder, and mixed prompts through the decoder.
#pragma once

#include <filesystem>
#include <ostream>

#include "runtime/oracle_check.h"

namespace ug {

// True for vision/vision_preprocess.json, vision/embedder/vision_embedder.json, audio/audio.json
// and mm/**/mm_summary.json.
bool is_multimodal_case_file(const std::filesystem::path& p);
// Runs every case of one such file, one line per case.
void run_multimodal_case_file(const std::filesystem::path& file, const OracleOptions& options,
                              std::ostream& out, OracleSummary* summary);

}  // namespace ug
