// Gemma 4 text model: configuration plus weight views, loaded from a GGUF file or a Hugging Face
// safetensors folder. Matrices stay in the file's mapping (zero-copy); small vectors (norms,
// scales, RoPE frequencies) are converted to fp32 at load.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "model/gemma4/config.h"

namespace ug {
class SafetensorsModel;
}
namespace ug::gguf {
class File;
}

namespace ug::gemma4 {

struct LayerWeights {
  kernels::Matrix attn_q, attn_k, attn_v, attn_output;  // attn_v.data == nullptr on K=V layers
  kernels::Matrix ffn_gate, ffn_up, ffn_down;
  std::vector<float> attn_norm, attn_q_norm, attn_k_norm, post_attention_norm;
  std::vector<float> ffn_norm, post_ffw_norm;
  float output_scale = 1;
  std::vector<float> rope_inv_freq;  // head_dim / 2 entries (pair j rotates by pos * inv_freq[j])
};

struct Model {
  std::string path;
  std::string format;  // "gguf" or "safetensors"
  Config config;
  kernels::Matrix token_embd;  // [n_vocab rows, n_embd cols]; also the tied LM head
  std::vector<float> output_norm;
  std::vector<LayerWeights> layers;

  // Metadata the runtime needs without reopening the file.
  std::vector<int> suppress_tokens;  // never sampled (e.g. <image|>, <audio|>)
  std::vector<int> eog_tokens;       // end of generation: <eos>, <turn|>, <|tool_response>
  uint64_t weight_bytes = 0;         // sum of tensor bytes used by the decoder

  // Keep the mappings alive.
  std::shared_ptr<gguf::File> gguf;
  std::shared_ptr<SafetensorsModel> safetensors;
  std::vector<std::vector<uint8_t>> owned;  // realigned copies of unaligned safetensors data
};

// Loads `path`: a .gguf file or a folder with config.json + *.safetensors. Throws ug::Error naming
// the file and field for anything wrong (wrong architecture, unsupported variant, missing tensor,
// shape or type mismatch, unsupported tensor type).
std::unique_ptr<Model> load_model(const std::string& path);

// Builds the config from an open GGUF file (architecture "gemma4"). Exposed for `unigemma info`.
Config config_from_gguf(const gguf::File& file);

}  // namespace ug::gemma4
