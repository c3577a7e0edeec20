// The bundled default model (models/unigemma-nano.gguf) end to end: run without -m answers the
// README's questions about the bundled image and sound, takes its image budget from the model,
// calls tools given with --tools, and `unigemma eval` on the shipped eval subset gives the
// PyTorch model's answers (recorded in the set) and the accuracy measured for the model card.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli_run.h"

namespace {

namespace fs = std::filesystem;
using ug::test::CliResult;
using ug::test::models_dir;
using ug::test::run_cli;

std::string normalized(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  while (!s.empty() && (std::isspace(static_cast<unsigned char>(s.back())) || s.back() == '.')) {
    s.pop_back();
  }
  return s;
}

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  return nlohmann::json::parse(in);
}

struct NanoModel : ::testing::Test {
  void SetUp() override {
    model = models_dir() / "unigemma-nano.gguf";
    ASSERT_TRUE(fs::exists(model)) << model << " is part of the repository";
  }
  // The default model is found without -m; UNIGEMMA_MODEL must not redirect these tests.
  CliResult run(const std::string& args) { return run_cli(args, "env -u UNIGEMMA_MODEL"); }
  fs::path model;
};

TEST_F(NanoModel, AnswersAboutTheBundledImageAndSoundWithoutModelOption) {
  const nlohmann::json labels = read_json(models_dir() / "examples" / "labels.json");
  ASSERT_GE(labels.size(), 2u);
  for (const auto& e : labels) {
    const std::string file = (models_dir() / "examples" / e["file"].get<std::string>()).string();
    const std::string kind = e["kind"].get<std::string>();
    const CliResult r = run("run --temp 0 -t 2 --" + kind + " " + file + " -p '" +
                            e["question"].get<std::string>() + "'");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.err.find("the bundled default"), std::string::npos) << r.err;
    EXPECT_EQ(normalized(r.out), normalized(e["answer"].get<std::string>()))
        << file << ": " << e["question"];
  }
}

TEST_F(NanoModel, ImageBudgetDefaultsToTheModelsOwn) {
  const std::string image = (models_dir() / "examples" / "shape.png").string();
  const CliResult def = run("run --json -n 1 -t 2 --image " + image + " -p 'Which shape?'");
  const CliResult big =
      run("run --json -n 1 -t 2 --image-tokens 280 --image " + image + " -p 'Which shape?'");
  ASSERT_EQ(def.code, 0) << def.err;
  ASSERT_EQ(big.code, 0) << big.err;
  const int def_tokens = nlohmann::json::parse(def.out)["usage"]["prompt_tokens"].get<int>();
  const int big_tokens = nlohmann::json::parse(big.out)["usage"]["prompt_tokens"].get<int>();
  // The model was trained at 70 soft tokens per image (clip.vision.max_soft_tokens).
  EXPECT_LT(def_tokens, 70 + 40);
  EXPECT_GT(def_tokens, 70);
  EXPECT_GT(big_tokens, 200 + 40);
}

TEST_F(NanoModel, ToolsOptionGivesANativeToolCall) {
  const std::string tools = (models_dir() / "examples" / "tools.json").string();
  const CliResult r =
      run("run --json --temp 0 -t 2 --tools " + tools + " -p 'What time is it in Paris?'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["tool_calls"].size(), 1u) << r.out;
  EXPECT_EQ(j["tool_calls"][0]["name"], "get_time");
  EXPECT_EQ(j["tool_calls"][0]["arguments"], nlohmann::json({{"city", "Paris"}}));
  EXPECT_EQ(j["finish_reason"], "tool_calls");

  const fs::path bad = ug::test::process_scratch_dir() / "bad-tools.json";
  std::ofstream(bad) << R"([{"type": "function"}])";
  const CliResult e = run("run --tools " + bad.string() + " -p hi");
  EXPECT_EQ(e.code, 2);
  EXPECT_NE(e.err.find("tools[0]"), std::string::npos) << e.err;
}

TEST_F(NanoModel, MissingDefaultModelIsAOneLineError) {
  const CliResult r = run_cli("run -p hi", "UNIGEMMA_MODEL=/nonexistent/nano.gguf");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("/nonexistent/nano.gguf"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;  // "model: ..." + error
}

TEST_F(NanoModel, EvalBadInputIsAOneLineError) {
  for (const auto& [args, what] :
       {std::pair<std::string, std::string>{"eval", "expected one eval set folder"},
        {"eval /nonexistent/set", "/nonexistent/set/examples.jsonl: cannot open"},
        {"eval " + (models_dir() / "eval").string() + " --tasks nosuchtask", "no examples"},
        {"eval " + (models_dir() / "eval").string() + " --image x.png", "does not apply"}}) {
    const CliResult r = run(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_NE(r.err.find(what), std::string::npos) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// The shipped subset of the held-out set, with the PyTorch model's greedy outputs recorded when it
// was made (training/evaluate.py --dump-set): the engine must give the same answers.
TEST_F(NanoModel, EvalSubsetGivesThePyTorchAnswers) {
  const fs::path out = ug::test::process_scratch_dir() / "nano-eval.json";
  const CliResult r =
      run("eval " + (models_dir() / "eval").string() + " -t 2 --json " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = read_json(out);
  int n = 0, same = 0;
  for (const auto& [task, t] : j["tasks"].items()) {
    n += t["n"].get<int>();
    same += t["same_as_reference"].get<int>();
    // Accuracy per task within one example of the PyTorch model's on the same examples.
    EXPECT_LE(std::abs(t["correct"].get<int>() - t["reference_correct"].get<int>()), 1) << task;
    if (t.contains("calls_expected")) {
      EXPECT_EQ(t["calls_valid"], t["calls_expected"]) << task << ": malformed tool calls";
    }
  }
  EXPECT_GE(n, 90);
  EXPECT_GE(same, n * 97 / 100) << same << " of " << n << " answers equal PyTorch's";
}

}  // namespace
