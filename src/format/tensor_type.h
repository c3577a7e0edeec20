// Tensor element types as numbered by GGUF (ggml_type), with block geometry.
// Only the types published Gemma 4 GGUFs use are supported; the rest are named for error messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ug {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

// Name of a raw ggml type number ("Q4_K", "IQ2_XXS", ... or "type#123").
std::string tensor_type_name(uint32_t raw);
inline std::string tensor_type_name(TensorType t) {
  return tensor_type_name(uint32_t(t));
}

// True for F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K.
bool tensor_type_supported(uint32_t raw);

// Parses "f32", "Q4_K", "q8_0", ... (case-insensitive) into a supported type; false if unknown.
bool parse_tensor_type(const std::string& name, TensorType* out);

// Elements per block (1 for float types, 32 for Q8_0/Q4_0, 256 for K-quants).
int64_t type_block_elems(TensorType t);
// Bytes per block.
int64_t type_block_bytes(TensorType t);
// Bytes for a row of n elements; n must be a multiple of the block size (checked by callers).
inline int64_t type_row_bytes(TensorType t, int64_t n) {
  return n / type_block_elems(t) * type_block_bytes(t);
}

}  // namespace ug
