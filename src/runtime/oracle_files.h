// Shared by the oracle case runners: reading reference float32 files and comparing against them.
#pragma once

#include <cstddef>
#include <filesystem>
#include <vector>

namespace ug {

struct OracleDiff {
  double max_abs = 0;  // NaN counts as infinitely far
  double mean_abs = 0;
  void merge(const OracleDiff& o);  // worst of both
};

OracleDiff oracle_diff(const float* a, const float* b, size_t n);

// `expected` float32 values from a raw little-endian file; with `exact`, the file must hold no
// more. Throws ug::Error naming the file.
std::vector<float> read_reference_f32(const std::filesystem::path& p, size_t expected,
                                      bool exact = false);

}  // namespace ug
