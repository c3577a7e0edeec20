#include "format/tensor_type.h"

#include <algorithm>
#include <cctype>

namespace ug {

namespace {
struct TypeRow {
  uint32_t raw;
  const char* name;
  int64_t block_elems;
  int64_t block_bytes;
  bool supported;
};
// Geometry from the GGUF specification (ggml block structs).
constexpr TypeRow kTypes[] = {
    {0, "F32", 1, 4, true},          {1, "F16", 1, 2, true},
    {2, "Q4_0", 32, 18, true},       {3, "Q4_1", 32, 20, false},
    {6, "Q5_0", 32, 22, false},      {7, "Q5_1", 32, 24, false},
    {8, "Q8_0", 32, 34, true},       {9, "Q8_1", 32, 36, false},
    {10, "Q2_K", 256, 84, false},    {11, "Q3_K", 256, 110, false},
    {12, "Q4_K", 256, 144, true},    {13, "Q5_K", 256, 176, true},
    {14, "Q6_K", 256, 210, true},    {15, "Q8_K", 256, 292, false},
    {16, "IQ2_XXS", 256, 66, false}, {17, "IQ2_XS", 256, 74, false},
    {18, "IQ3_XXS", 256, 98, false}, {19, "IQ1_S", 256, 50, false},
    {20, "IQ4_NL", 32, 18, false},   {21, "IQ3_S", 256, 110, false},
    {22, "IQ2_S", 256, 82, false},   {23, "IQ4_XS", 256, 136, false},
    {24, "I8", 1, 1, false},         {25, "I16", 1, 2, false},
    {26, "I32", 1, 4, false},        {27, "I64", 1, 8, false},
    {28, "F64", 1, 8, false},        {29, "IQ1_M", 256, 56, false},
    {30, "BF16", 1, 2, true},        {34, "TQ1_0", 256, 54, false},
    {35, "TQ2_0", 256, 66, false},   {39, "MXFP4", 32, 17, false},
};

const TypeRow* find_row(uint32_t raw) {
  for (const auto& r : kTypes) {
    if (r.raw == raw) return &r;
  }
  return nullptr;
}
}  // namespace

std::string tensor_type_name(uint32_t raw) {
  if (const TypeRow* r = find_row(raw)) return r->name;
  return "type#" + std::to_string(raw);
}

bool tensor_type_supported(uint32_t raw) {
  const TypeRow* r = find_row(raw);
  return r && r->supported;
}

bool parse_tensor_type(const std::string& name, TensorType* out) {
  std::string upper = name;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return char(std::toupper(c)); });
  for (const auto& r : kTypes) {
    if (r.supported && upper == r.name) {
      *out = TensorType(r.raw);
      return true;
    }
  }
  return false;
}

int64_t type_block_elems(TensorType t) {
  const TypeRow* r = find_row(uint32_t(t));
  return r ? r->block_elems : 0;
}

int64_t type_block_bytes(TensorType t) {
  const TypeRow* r = find_row(uint32_t(t));
  return r ? r->block_bytes : 0;
}

}  // namespace ug
