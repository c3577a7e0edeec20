// Shared pieces of the GGUF and safetensors loaders: one tensor-validation path for both formats.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/gemma4/model.h"
#include "model/gemma4/tensor_names.h"

namespace ug::gemma4 {

// A tensor as found in a file, in ggml dimension order (ne[0] = contiguous input dim).
struct TensorRef {
  std::string name;
  std::string source;  // file it came from (for messages)
  uint32_t raw_type = 0;
  std::string type_name;
  bool supported = false;
  TensorType type = TensorType::F32;
  std::vector<int64_t> ne;
  const uint8_t* data = nullptr;
  uint64_t n_bytes = 0;
};
using TensorLookup = std::function<std::optional<TensorRef>(const std::string& name)>;

struct WeightNames {
  std::string token_embd;
  std::string output_norm;
  std::function<std::string(int layer, LayerTensor)> layer;
};

// A present tensor of a supported type; throws ug::Error naming it otherwise.
TensorRef require_tensor(const TensorLookup& lookup, const std::string& name,
                         const std::string& source);
// A 2-D weight of ggml shape {cols, rows} (rows = outputs), validated for shape and block size.
kernels::Matrix load_matrix(const TensorLookup& lookup, const std::string& name, int64_t cols,
                            int64_t rows, const std::string& source);
// Checks layer geometry (head dims, block-size divisibility, RoPE dims).
void validate_config(const Config& c, const std::string& source);
// Fills model.layers / token_embd / output_norm and config.n_vocab, validating presence, type and
// shape.
void fill_weights(Model& model, const TensorLookup& lookup, const WeightNames& names);
// Converts a 1-D float tensor to fp32; expected_len < 0 accepts any length.
std::vector<float> load_vector(const TensorRef& t, int64_t expected_len);
// inv_freq[j] = base^(-2j/rope_dims) / factor[j] for j < rope_dims/2, 0 for the remaining pairs.
std::vector<float> rope_inv_freq(const LayerConfig& l, const std::vector<float>& factors);

std::unique_ptr<Model> load_model_gguf(const std::string& path);
std::unique_ptr<Model> load_model_safetensors(const std::string& dir);

}  // namespace ug::gemma4
