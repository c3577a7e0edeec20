// Model files without Python: Hugging Face safetensors folders to GGUF (`unigemma convert`) and
// GGUF re-quantization (`unigemma quantize`). Both stream tensor by tensor (rows in chunks), write
// to "<out>.tmp" and rename only after a complete write, and release source pages as they go, so a
// 12B conversion stays far below the model's size in resident memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "format/tensor_type.h"

namespace ug {

// A requested output type: one base type plus llama-quantize's mixture rules (docs/convert.md).
struct OutputType {
  std::string name;  // as given, lower case: "f32", "bf16", "q8_0", "q4_k_m", ...
  TensorType base = TensorType::F32;
  bool mix_m = false;  // "_m" mixes: some attn_v / ffn_down tensors one step up (Q6_K)
};
// Parses f32, f16, bf16, q8_0, q4_0, q4_k (= q4_k_s), q4_k_m, q5_k (= q5_k_s), q5_k_m, q6_k.
bool parse_output_type(const std::string& name, OutputType* out);
const char* output_type_names();
// llama.cpp's general.file_type number for the mixture (LLAMA_FTYPE_*).
uint32_t llama_file_type(const OutputType& t);

// What a tensor is, for the type rules.
enum class TensorRole {
  kVector,         // norms, biases, scales, rope_freqs: always F32
  kTokenEmbd,      // the (tied) embedding / LM head
  kMatrix,         // other decoder weights
  kAttnV,          // attn_v (one step up in _m mixes for some layers)
  kFfnDown,        // ffn_down (same)
  kProjector,      // multimodal projector matrices: never below 8 bits (spec §9.3)
  kPositionTable,  // vision position table: F32, or F16/BF16 when that is the base type
};
// Type of one tensor. `index`/`count`: position of this tensor among those of its role in the
// model (attn_v and ffn_down only). Rows whose length is not a multiple of the chosen type's
// block fall back to Q8_0 (or F16 when not a multiple of 32 either).
TensorType choose_tensor_type(const OutputType& t, TensorRole role, int64_t ne0, int index,
                              int count);
// Role of a tensor by its GGUF name (and dimension count).
TensorRole tensor_role_from_gguf_name(const std::string& name, int n_dims);

struct ConvertProgress {
  std::function<void(const std::string& file, const std::string& tensor, int index, int count)>
      on_tensor;
};

struct ConvertOptions {
  OutputType type;            // default f16-like: see cmd_convert (bf16)
  std::string out_path;       // text model (or assistant) GGUF, or the bundle
  std::string mmproj_out;     // projector GGUF; empty = "mmproj-<out name>" next to out_path
  bool no_mmproj = false;     // skip the projector even if the folder has one
  bool bundle = false;        // one file: text + projector + drafter + tokenizer + template
  std::string assistant_dir;  // HF folder of the drafter (with --bundle)
  std::string vocab_gguf;     // take tokenizer.* from this GGUF instead of tokenizer.json
  std::string name;           // general.name; default from config.json or the folder name
  int n_threads = 1;
  ConvertProgress progress;
};

// Converts an HF folder (config.json architectures[0] = Gemma4UnifiedForConditionalGeneration or
// Gemma4UnifiedAssistantForCausalLM). Returns the files written. Throws ug::Error (one line,
// naming file and field) for bad input; nothing is left under a final name on failure.
std::vector<std::string> convert_hf_to_gguf(const std::string& hf_dir, const ConvertOptions& o);

// Re-encodes a GGUF (text, mmproj, assistant or bundle) into `type` with the same rules.
// F32/F16/BF16 sources only, unless allow_requantize (quantized -> other type: dequantize first).
void quantize_gguf(const std::string& in_path, const std::string& out_path, const OutputType& type,
                   int n_threads, bool allow_requantize, const ConvertProgress& progress = {});

}  // namespace ug
