// Running the unigemma binary from a test, and where the repository's bundled model lives.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_support.h"

namespace ug::test {

// The repository's models/ folder (the bundled unigemma-nano and its example media).
inline std::filesystem::path models_dir() {
  return std::filesystem::path(UG_TEST_DATA_DIR).parent_path().parent_path() / "models";
}

struct CliResult {
  int code = -1;
  std::string out, err;
};

// Runs `ENV unigemma ARGS` through the shell (ARGS shell-quoted by the caller; ENV e.g.
// "UNIGEMMA_MODEL=x" or "env -u NAME") with stdin from /dev/null.
inline CliResult run_cli(const std::string& args, const std::string& env = "") {
  const std::filesystem::path dir = process_scratch_dir();
  const std::string out = (dir / "cli-stdout").string(), err = (dir / "cli-stderr").string();
  const std::string cmd = env + (env.empty() ? "" : " ") + cli_path() + " " + args + " >" + out +
                          " 2>" + err + " </dev/null";
  const int status = std::system(cmd.c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace ug::test
