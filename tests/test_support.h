// Helpers shared by the unit tests: where the oracle pack and test data live.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include <unistd.h>

namespace ug::test {

// ../shared/oracle next to the checkout, or $UG_ORACLE_DIR. Empty when absent.
inline std::string oracle_dir() {
  if (const char* env = std::getenv("UG_ORACLE_DIR"); env && *env) {
    return std::filesystem::exists(env) ? std::string(env) : std::string();
  }
  return std::filesystem::exists(UG_DEFAULT_ORACLE_DIR) ? std::string(UG_DEFAULT_ORACLE_DIR)
                                                        : std::string();
}

inline std::string data_dir() {
  return UG_TEST_DATA_DIR;
}
inline std::string cli_path() {
  return UG_CLI_PATH;
}

// A scratch folder for this test process, removed when the process exits. CTest runs every test in
// its own process, so a per-test folder that is never removed would leave one folder per test run.
inline std::filesystem::path process_scratch_dir() {
  struct Dir {
    std::filesystem::path path;
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir{std::filesystem::temp_directory_path() /
                       ("unigemma-test-" + std::to_string(::getpid()))};
  std::filesystem::create_directories(dir.path);
  return dir.path;
}

}  // namespace ug::test

// Skips the current test when the oracle pack is not present (CI always has it).
#define UG_REQUIRE_ORACLE(var)                                                             \
  const std::string var = ::ug::test::oracle_dir();                                        \
  if (var.empty()) {                                                                       \
    GTEST_SKIP() << "oracle pack not found (../shared/oracle or UG_ORACLE_DIR); skipping"; \
  }
