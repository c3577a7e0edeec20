// `unigemma convert / quantize / pull / ls / rm` end to end: converted files pass check-oracle,
// bad input exits 2 with one line, and pulls from a local mock hub (tests/cli/hf_mock_server.py)
// resume after an interrupted transfer and reject checksum mismatches.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_support.h"
#include "util/sha256.h"

namespace {

namespace fs = std::filesystem;

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

fs::path scratch_dir() {
  return ug::test::process_scratch_dir();
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs the binary with `env` prefixed (VAR=value ...).
RunResult run(const std::string& args, const std::string& env = "") {
  const fs::path out = scratch_dir() / "stdout", err = scratch_dir() / "stderr";
  const std::string cmd = env + " " + ug::test::cli_path() + " " + args + " >" + out.string() +
                          " 2>" + err.string() + " </dev/null";
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

void expect_bad_input(const RunResult& r, const std::string& what) {
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(ConvertCli, ConvertedTwinPassesCheckOracleForItsVariant) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string hf = oracle + "/models/tiny-a/hf";
  const std::string vocab = oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf";
  for (const char* type : {"f32", "q8_0", "q4_0"}) {
    SCOPED_TRACE(type);
    const fs::path out = scratch_dir() / (std::string("cli-") + type + ".gguf");
    RunResult r = run("convert " + hf + " -o " + out.string() + " --type " + type + " --vocab " +
                      vocab + " --name gemma4-tiny-a -t 2");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(fs::exists(out));
    // --model stands in for the cases of its own variant only; the other 42 are skipped.
    r = run("check-oracle " + oracle + "/text/cases-tiny-a.jsonl --model " + out.string() +
            " -t 2");
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("7 passed, 0 failed, 42 skipped"), std::string::npos) << r.out;
  }
}

TEST(ConvertCli, QuantizeThenCheckOracle) {
  UG_REQUIRE_ORACLE(oracle);
  // Q6_K: our encoder reproduces llama-quantize's file byte for byte, so the references computed on
  // that file's weights apply (our Q4_K differs in some blocks: equal MSE, not equal logits).
  const fs::path out = scratch_dir() / "cli-quant-q6_k.gguf";
  RunResult r = run("quantize " + oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf " + out.string() +
                    " q6_k -t 2");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("check-oracle " + oracle + "/text/cases-tiny-a.jsonl --model " + out.string() + " -t 2");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("7 passed, 0 failed, 42 skipped"), std::string::npos) << r.out;
}

TEST(ConvertCli, BadInputExitsTwoWithOneLine) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string hf = oracle + "/models/tiny-a/hf";
  const fs::path out = scratch_dir() / "bad.gguf";
  expect_bad_input(run("convert " + hf + " -o " + out.string() + " --type q3_k"), "unknown --type");
  expect_bad_input(run("convert /nonexistent/folder -o " + out.string()), "/nonexistent/folder");
  expect_bad_input(run("convert " + hf + " -o " + out.string()), "tokenizer.json");
  expect_bad_input(
      run("quantize " + oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf " + out.string() + " q2_k"),
      "unknown type");
  expect_bad_input(run("quantize /nonexistent.gguf " + out.string() + " q8_0"),
                   "/nonexistent.gguf");
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
}

TEST(ConvertCli, SynthSafetensorsFolderConvertsToABundleThatRuns) {
  const fs::path dir = scratch_dir() / "synth-tiny-hf";
  RunResult r = run("synth --shape tiny --format safetensors -o " + dir.string());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
  const fs::path bundle = scratch_dir() / "synth-bundle.gguf";
  r = run("convert " + dir.string() + " -o " + bundle.string() + " --type q8_0 --bundle -t 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(scratch_dir() / "mmproj-synth-bundle.gguf"));
  r = run("info " + bundle.string());
  EXPECT_EQ(r.code, 0) << r.err;
  r = run("run -m " + bundle.string() + " --raw -p hello -n 4 -t 2");
  EXPECT_EQ(r.code, 0) << r.err;
}

// ---------------------------------------------------------------------------------------------
// pull / ls / rm against the mock hub

class MockHub : public ::testing::Test {
 protected:
  void SetUp() override {
    oracle_ = ug::test::oracle_dir();
    if (oracle_.empty()) GTEST_SKIP() << "oracle pack not found";
    root_ = scratch_dir() /
            ("hub-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(root_);
    const fs::path repo = root_ / "repos" / "acme" / "tiny";
    fs::create_directories(repo);
    fs::copy_file(oracle_ + "/models/tiny-a/gemma4-tiny-a-q8_0.gguf", repo / "tiny-Q8_0.gguf");
    fs::copy_file(oracle_ + "/mm/model/mmproj-gemma4-tiny-a-f32.gguf",
                  repo / "mmproj-tiny-f32.gguf");
    fs::copy_file(oracle_ + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf",
                  repo / "tiny-assistant-f32.gguf");
    std::ofstream(repo / "README.md") << "tiny test repo\n";
    cache_ = root_ / "cache";
    log_ = root_ / "requests.log";
  }
  void TearDown() override { stop(); }

  void start(const std::string& faults = "") {
    const fs::path script = fs::path(UG_TEST_DATA_DIR).parent_path() / "cli" / "hf_mock_server.py";
    const std::string cmd = "exec /usr/bin/python3 " + script.string() + " --root " +
                            (root_ / "repos").string() + " --log " + log_.string() + " " + faults;
    server_ = popen(cmd.c_str(), "r");
    ASSERT_NE(server_, nullptr);
    int port = 0;
    ASSERT_EQ(std::fscanf(server_, "%d %d", &port, &pid_), 2) << "mock hub did not start";
    env_ = "UG_HF_ENDPOINT=http://127.0.0.1:" + std::to_string(port) +
           " UG_CACHE_DIR=" + cache_.string();
  }
  void stop() {
    if (pid_ > 0) ::kill(pid_, SIGTERM);
    if (server_) pclose(server_);
    server_ = nullptr;
    pid_ = 0;
  }
  fs::path cached(const std::string& file) const { return cache_ / "acme" / "tiny" / file; }
  fs::path source(const std::string& file) const {
    return root_ / "repos" / "acme" / "tiny" / file;
  }

  std::string oracle_;
  fs::path root_, cache_, log_;
  FILE* server_ = nullptr;
  int pid_ = 0;
  std::string env_;
};

TEST_F(MockHub, PullsModelProjectorAndDrafterVerified) {
  start();
  RunResult r = run("pull acme/tiny --no-progress", env_);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"tiny-Q8_0.gguf", "mmproj-tiny-f32.gguf", "tiny-assistant-f32.gguf"}) {
    ASSERT_TRUE(fs::exists(cached(f))) << f;
    EXPECT_EQ(ug::sha256_file_hex(cached(f).string()), ug::sha256_file_hex(source(f).string()));
    EXPECT_FALSE(fs::exists(cached(std::string(f) + ".part")));
  }
  EXPECT_FALSE(fs::exists(cached("README.md")));
  EXPECT_NE(r.err.find("sha256 verified"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("mmproj"), std::string::npos) << r.out;
  // Second pull: nothing downloaded again.
  const std::string before = slurp(log_);
  const size_t requests = size_t(std::count(before.begin(), before.end(), '\n'));
  r = run("pull acme/tiny --no-progress", env_);
  EXPECT_EQ(r.code, 0) << r.err;
  const std::string log = slurp(log_);
  EXPECT_EQ(size_t(std::count(log.begin(), log.end(), '\n')), requests + 1);  // the file list only
  // ls shows the three files; run -m hf: uses the cache without the hub.
  r = run("ls", env_);
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("tiny-Q8_0.gguf"), std::string::npos) << r.out;
  stop();
  r = run("run -m hf:acme/tiny --raw -p hello -n 3 -t 2", env_);
  EXPECT_EQ(r.code, 0) << r.err;
  // rm one file, then the repo.
  r = run("rm acme/tiny:mmproj-tiny-f32.gguf", env_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(cached("mmproj-tiny-f32.gguf")));
  r = run("rm acme/tiny", env_);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(cache_ / "acme" / "tiny"));
  expect_bad_input(run("rm acme/tiny", env_), "not in the cache");
}

TEST_F(MockHub, InterruptedDownloadResumesWithRange) {
  start("--truncate-once tiny-Q8_0.gguf");
  RunResult r = run("pull acme/tiny:Q8_0 --no-progress", env_);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(cached("tiny-Q8_0.gguf")));  // never complete-looking
  ASSERT_TRUE(fs::exists(cached("tiny-Q8_0.gguf.part")));
  const uint64_t have = fs::file_size(cached("tiny-Q8_0.gguf.part"));
  EXPECT_GT(have, 0u);
  EXPECT_LT(have, fs::file_size(source("tiny-Q8_0.gguf")));
  r = run("ls", env_);
  EXPECT_NE(r.out.find("partial download"), std::string::npos) << r.out;
  // Again: resumes from where it stopped, verifies, completes.
  r = run("pull acme/tiny:Q8_0 --no-progress", env_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(ug::sha256_file_hex(cached("tiny-Q8_0.gguf").string()),
            ug::sha256_file_hex(source("tiny-Q8_0.gguf").string()));
  EXPECT_FALSE(fs::exists(cached("tiny-Q8_0.gguf.part")));
  EXPECT_NE(slurp(log_).find("resolve/main/tiny-Q8_0.gguf bytes=" + std::to_string(have) + "-"),
            std::string::npos)
      << slurp(log_);
}

TEST_F(MockHub, ChecksumMismatchLeavesNoFile) {
  start("--bad-sha tiny-Q8_0.gguf");
  RunResult r = run("pull acme/tiny --no-progress", env_);
  expect_bad_input(r, "SHA-256 mismatch");
  EXPECT_FALSE(fs::exists(cached("tiny-Q8_0.gguf")));
  EXPECT_FALSE(fs::exists(cached("tiny-Q8_0.gguf.part")));
}

TEST_F(MockHub, UnknownRepoAndAmbiguousChoice) {
  fs::copy_file(source("tiny-Q8_0.gguf"), source("tiny-F16.gguf"));
  start();
  expect_bad_input(run("pull acme/missing --no-progress", env_), "not found");
  expect_bad_input(run("pull acme/tiny --no-progress", env_), "several models");
  expect_bad_input(run("pull not-a-repo", env_), "not a model repository");
  expect_bad_input(run("pull acme/tiny:Q5_K --no-progress", env_), "matches 0");
  EXPECT_FALSE(fs::exists(cache_ / "acme" / "tiny" / "tiny-F16.gguf"));
}

}  // namespace
