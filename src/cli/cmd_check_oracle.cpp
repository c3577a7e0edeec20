#include <cstdio>
#include <iostream>

#include "cli/args.h"
#include "cli/commands.h"
#include "runtime/oracle_check.h"
#include "util/error.h"

namespace ug::cli {

int cmd_check_oracle(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h", "-v", "--verbose"});
  if (args.has("--help") || args.has("-h") || args.positional().empty()) {
    std::puts(
        "usage: unigemma check-oracle PATH [--model FILE] [-t N] [--cache-type f32|f16|bf16|q8_0]\n"
        "       [--cache-type-global T]\n"
        "  PATH: the oracle pack (../shared/oracle), one of its folders, or one case file.\n"
        "  --model substitutes FILE for the model each case names.");
    return args.positional().empty() && !args.has("--help") && !args.has("-h") ? 2 : 0;
  }
  args.reject_unknown({"--model", "-m", "-t", "--threads", "--cache-type", "--cache-type-global",
                       "-v", "--verbose"});
  OracleOptions o;
  o.model_override = args.get({"--model", "-m"});
  o.n_threads = args.get_int({"-t", "--threads"}, 0);
  o.verbose = args.has("-v") || args.has("--verbose");
  const std::string ct = args.get({"--cache-type"}, "f32");
  if (!parse_tensor_type(ct, &o.cache_type)) throw Error("unknown --cache-type '" + ct + "'");
  const std::string gt = args.get({"--cache-type-global"});
  if (!gt.empty()) {
    TensorType t;
    if (!parse_tensor_type(gt, &t)) throw Error("unknown --cache-type-global '" + gt + "'");
    o.global_cache_type = t;
  }
  OracleSummary total;
  for (const auto& path : args.positional()) {
    const OracleSummary s = run_oracle_checks(path, o, std::cout);
    total.passed += s.passed;
    total.failed += s.failed;
    total.skipped += s.skipped;
  }
  std::printf("%d passed, %d failed, %d skipped\n", total.passed, total.failed, total.skipped);
  return total.failed ? 1 : 0;
}

}  // namespace ug::cli
