// MTP drafter cases of the oracle pack (README-mtp.md §5): target prerequisites, teacher-forced and
// end-to-end drafter steps, greedy continuation, and the speculative rounds.
#pragma once

#include <filesystem>
#include <ostream>
#include <vector>

#include "runtime/oracle_check.h"

namespace ug {

// True for <oracle>/mtp/<pair>/<case>/case.json.
bool is_mtp_case_file(const std::filesystem::path& p);

// Runs each case (a case.json path), printing one PASS/FAIL line per case.
void run_mtp_cases(const std::vector<std::filesystem::path>& case_files,
                   const OracleOptions& options, std::ostream& out, OracleSummary* summary);

}  // namespace ug
