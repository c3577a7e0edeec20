// `unigemma check-oracle`: runs reference cases from the oracle pack (../shared/oracle) and
// compares our outputs with the stated tolerances (README-text.md §3.6 for text cases).
#pragma once

#include <optional>
#include <ostream>
#include <string>

#include "format/tensor_type.h"

namespace ug {

struct OracleOptions {
  std::string model_override;  // substitute this model for the one each case names
  int n_threads = 0;           // 0 = all cores
  TensorType cache_type = TensorType::F32;
  std::optional<TensorType> global_cache_type;  // full-attention layers; unset: cache_type
  bool verbose = false;
};

struct OracleSummary {
  int passed = 0;
  int failed = 0;
  int skipped = 0;
};

// `path` is the oracle root, one of its folders, or one case file. Prints one line per case.
// Throws ug::Error if `path` holds no case this version understands.
OracleSummary run_oracle_checks(const std::string& path, const OracleOptions& options,
                                std::ostream& out);

}  // namespace ug
