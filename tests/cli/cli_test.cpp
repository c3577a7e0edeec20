// The unigemma binary end to end: exit codes, one-line errors, check-oracle over the oracle pack.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace {

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tmp(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "unigemma-cli-tests";
  std::filesystem::create_directories(dir);
  return (dir / (std::to_string(::getpid()) + "-" + name)).string();
}

RunResult run(const std::string& args, const std::string& stdin_path = "/dev/null") {
  const std::string out = tmp("stdout"), err = tmp("stderr");
  const std::string cmd =
      ug::test::cli_path() + " " + args + " >" + out + " 2>" + err + " <" + stdin_path;
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A bad-input error: exit code 2 and exactly one line on stderr that names `what`.
void expect_bad_input(const RunResult& r, const std::string& what) {
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(Cli, UnknownCommandAndOption) {
  expect_bad_input(run("frobnicate"), "unknown command");
  expect_bad_input(run("run --bogus 1"), "unknown option --bogus");
}

TEST(Cli, BrokenModelFilesAreOneLineErrors) {
  const std::string missing = tmp("does-not-exist.gguf");
  expect_bad_input(run("info " + missing), "does-not-exist.gguf");
  const std::string magic = tmp("magic.gguf");
  write_bytes(magic, std::string("GGUX\3\0\0\0", 8) + std::string(64, '\0'));
  expect_bad_input(run("info " + magic), "magic.gguf");
  const std::string trunc = tmp("trunc.gguf");
  write_bytes(trunc, std::string("GGUF\3\0\0\0\5\0", 10));
  expect_bad_input(run("run -m " + trunc + " -p hi"), "trunc.gguf");
}

TEST(Cli, SynthRunInfoBench) {
  const std::string model = tmp("tiny.gguf");
  RunResult s = run("synth --shape tiny --type q8_0 -o " + model);
  ASSERT_EQ(s.code, 0) << s.err;
  RunResult i = run("info " + model);
  EXPECT_EQ(i.code, 0) << i.err;
  EXPECT_NE(i.out.find("6 layers (5 sliding, 1 full)"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("Q8_0"), std::string::npos) << i.out;
  RunResult r = run("run -m " + model + " -p 'Hello world' -n 8 -t 2");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("generated: 8 tokens"), std::string::npos) << r.err;
  RunResult b = run("bench -m " + model + " -p 16 -n 4 -r 2 -t 2 -o json");
  EXPECT_EQ(b.code, 0) << b.err;
  EXPECT_NE(b.out.find("\"n_prompt\": 16"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("\"n_gen\": 4"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("\"avg_ts\""), std::string::npos) << b.out;
  // Prompt longer than the context: a clear error, not a crash.
  expect_bad_input(run("run -m " + model + " -p 'one two three four five six' --ctx 4"),
                   "context length");
}

// A slice of a shape: the first N layers, with the 5 sliding : 1 full pattern kept.
TEST(Cli, SynthLayersWritesASliceThatRuns) {
  const std::string model = tmp("tiny-slice.gguf");
  RunResult s = run("synth --shape tiny --type q4_0 --layers 2 -o " + model);
  ASSERT_EQ(s.code, 0) << s.err;
  RunResult i = run("info " + model);
  EXPECT_EQ(i.code, 0) << i.err;
  EXPECT_NE(i.out.find("2 layers (2 sliding, 0 full)"), std::string::npos) << i.out;
  RunResult r = run("run -m " + model + " -p 'Hello world' -n 4 -t 2");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("generated: 4 tokens"), std::string::npos) << r.err;
  expect_bad_input(run("synth --shape tiny --layers 7 -o " + model), "outside 1..6");
  expect_bad_input(run("synth --shape tiny --layers 0 -o " + model), "--layers must be >= 1");
  expect_bad_input(run("synth --shape tiny --drafter --layers 2 -o " + model), "--layers");
}

TEST(Cli, CheckOracleTextTokenizerTemplateCasesPass) {
  UG_REQUIRE_ORACLE(oracle);
  RunResult r = run("check-oracle " + oracle + " -t 2");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find(" 0 failed"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
  // 53 text records, 2401 tokenizer records, 40 conversations, vision/audio/mm and MTP cases; the
  // one skip is the tiny-a-mid multimodal model the pack does not ship (video fps=1 is checked).
  EXPECT_NE(r.out.find("2549 passed, 0 failed, 1 skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PASS tokenizer/generated.jsonl: 2000/2000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PASS template/t25"), std::string::npos) << r.out;
}

TEST(Cli, CheckOracleModelOverrideUsesTheGivenModel) {
  UG_REQUIRE_ORACLE(oracle);
  // The HF twin substituted for the f32 GGUF passes the f32 cases.
  std::string cases = tmp("f32-cases.jsonl");
  {
    std::ifstream in(oracle + "/text/cases-tiny-a.jsonl");
    std::string line, f32;
    while (std::getline(in, line)) {
      if (line.find("\"variant\": \"f32\"") != std::string::npos) f32 += line + "\n";
    }
    ASSERT_FALSE(f32.empty());
    // Case files resolve data paths against the oracle root; keep it in a text/ folder beside
    // models/.
    const auto dir = std::filesystem::path(tmp("oracle-view"));
    std::filesystem::create_directories(dir);
    for (const char* sub : {"models", "text"}) {
      const auto link = dir / sub;
      if (!std::filesystem::exists(link) && std::string(sub) == "models") {
        std::filesystem::create_directory_symlink(oracle + "/models", link);
      }
    }
    std::filesystem::create_directories(dir / "text");
    for (const auto& e : std::filesystem::directory_iterator(oracle + "/text")) {
      const auto target = dir / "text" / e.path().filename();
      if (e.is_directory() && !std::filesystem::exists(target)) {
        std::filesystem::create_directory_symlink(e.path(), target);
      }
    }
    cases = (dir / "text" / "cases-f32only.jsonl").string();
    std::ofstream(cases) << f32;
  }
  RunResult r = run("check-oracle " + cases + " --model " + oracle + "/models/tiny-a/hf -t 2");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("7 passed, 0 failed"), std::string::npos) << r.out;
}

TEST(Cli, ChatBadInputs) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string model = oracle + "/models/tiny-rv/gemma4-tiny-rv-f16.gguf";
  const std::string base = "run -m " + model + " -t 2 -n 4 --temp 0 ";
  // Invalid UTF-8 in the prompt is tokenized (byte fallback), not a crash.
  const std::string bad_utf8 = tmp("bad-utf8.txt");
  write_bytes(bad_utf8, "caf\xc3 \xff\xfe broken \xe2\x82");
  RunResult r = run(base + "-p -", bad_utf8);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("generated: 4 tokens"), std::string::npos) << r.err;
  // A template that raises: the message is passed through.
  const std::string raising = tmp("raise.jinja");
  write_bytes(raising,
              "{{ bos_token }}{% if messages|length > 0 %}{{ raise_exception('no chats today') "
              "}}{% endif %}");
  expect_bad_input(run(base + "-p hi --chat-template " + raising), "no chats today");
  // A template with a syntax error: the message names the template line.
  const std::string broken = tmp("broken.jinja");
  write_bytes(broken, "{{ bos_token }}\n{% for m in messages %}\n{{ m.content }\n");
  expect_bad_input(run(base + "-p hi --chat-template " + broken), "line");
  // Attribute of an unknown variable.
  const std::string unknown = tmp("unknown.jinja");
  write_bytes(unknown, "{{ no_such_thing.field }}");
  expect_bad_input(run(base + "-p hi --chat-template " + unknown), "no_such_thing");
  // A prompt far longer than the context.
  const std::string longp = tmp("long.txt");
  std::string words;
  for (int i = 0; i < 20000; ++i) words += "word" + std::to_string(i) + " ";
  write_bytes(longp, words);
  expect_bad_input(run(base + "--ctx 512 -p -", longp), "context length 512");
  // Token ids out of range in detokenize.
  expect_bad_input(run("detokenize -m " + model + " 1 2 999999999"), "out of range");
}

TEST(Cli, TemplateTokenizeDetokenize) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string model = oracle + "/models/tiny-rv/gemma4-tiny-rv-f16.gguf";
  const std::string conv = tmp("conv.json");
  write_bytes(
      conv, R"({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": true})");
  RunResult t = run("template -m " + model + " --conversation " + conv);
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_EQ(t.out, "<bos><|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
  RunResult k = run("tokenize -m " + model + " --special '<|turn>user'");
  ASSERT_EQ(k.code, 0) << k.err;
  EXPECT_EQ(k.out.substr(0, 4), "105 ");
  RunResult d = run("detokenize -m " + model + " 105 2364");
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(d.out.substr(0, 7), "<|turn>");
}

// MTP from the command line: synthetic drafter, bench --draft (real and controlled acceptance),
// the drafter offered when it sits next to the model, --draft auto, run --raw with a drafter.
TEST(Cli, MtpSynthDrafterBenchAutoOfferAndRawRun) {
  const std::string target = tmp("mtp-target.gguf"), drafter = tmp("mtp-drafter.gguf");
  ASSERT_EQ(run("synth --shape tiny --type q8_0 -o " + target).code, 0);
  RunResult s = run("synth --shape tiny --drafter --type q8_0 -o " + drafter);
  ASSERT_EQ(s.code, 0) << s.err;
  RunResult b = run("bench -m " + target + " --draft " + drafter +
                    " -p 16 -n 24 -t 2 --draft-max 2 --cost-reps 1 --draft-accept 0,1 -o json");
  ASSERT_EQ(b.code, 0) << b.err;
  const auto j = nlohmann::json::parse(b.out);
  EXPECT_EQ(j["cost"]["verify"].size(), 2u);
  EXPECT_GT(j["cost"]["decode_step_s"].get<double>(), 0);
  EXPECT_GT(j["plain"]["avg_ts"].get<double>(), 0);
  ASSERT_EQ(j["runs"].size(), 6u);  // (k=1, k=2, adaptive) x (accept 0, accept 1)
  for (const auto& r : j["runs"]) {
    const bool all = r["accept_rate"].get<double>() == 1.0;
    if (r["mode"] == "adaptive") continue;
    EXPECT_EQ(r["accepted"].get<int64_t>(), all ? r["drafted"].get<int64_t>() : 0) << r.dump();
    EXPECT_GT(r["drafted"].get<int64_t>(), 0) << r.dump();
    if (all && r["mode"] == "k=2") {
      // 24 tokens in rounds of 3 (two drafts and the target's own token).
      EXPECT_EQ(r["rounds"].get<int64_t>(), 8) << r.dump();
      EXPECT_EQ(r["acceptance"], nlohmann::json::array({1.0, 1.0})) << r.dump();
    }
  }
  RunResult table = run("bench -m " + target + " --draft " + drafter +
                        " -p 16 -n 8 -t 2 --draft-max 1 --cost-reps 1");
  EXPECT_EQ(table.code, 0) << table.err;
  EXPECT_NE(table.out.find("| drafter | adaptive |"), std::string::npos) << table.out;
  expect_bad_input(run("bench -m " + target + " --draft " + drafter + " --draft-accept 0,x"),
                   "--draft-accept");

  UG_REQUIRE_ORACLE(oracle);
  // The oracle's tiny target with its echo drafter beside it under a recognisable name.
  const auto dir = std::filesystem::path(tmp("mtp-dir"));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string model = (dir / "gemma4-tiny-a.gguf").string();
  std::filesystem::create_symlink(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf", model);
  const std::string prompt = " --raw --ids 2,4106,4120,4106,4120,4106 -n 40 -t 2";
  RunResult plain = run("run -m " + model + prompt);
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_EQ(plain.err.find("hint: MTP drafter"), std::string::npos) << plain.err;
  expect_bad_input(run("run -m " + model + prompt + " --draft auto"), "--draft auto");
  std::filesystem::create_symlink(oracle + "/mtp/models/gemma4-tiny-a-assistant-echo-f32.gguf",
                                  dir / "gemma4-tiny-a-assistant.gguf");
  std::filesystem::create_symlink(target, dir / "unrelated-draft.gguf");  // not a drafter
  RunResult hinted = run("run -m " + model + prompt);
  ASSERT_EQ(hinted.code, 0) << hinted.err;
  EXPECT_NE(hinted.err.find("hint: MTP drafter " + (dir / "gemma4-tiny-a-assistant.gguf").string()),
            std::string::npos)
      << hinted.err;
  EXPECT_EQ(hinted.out, plain.out);
  RunResult none = run("run -m " + model + prompt + " --draft none");
  EXPECT_EQ(none.err.find("hint:"), std::string::npos) << none.err;
  RunResult spec = run("run -m " + model + prompt + " --draft auto");
  ASSERT_EQ(spec.code, 0) << spec.err;
  EXPECT_EQ(spec.out, plain.out);
  EXPECT_NE(spec.err.find("speculative: "), std::string::npos) << spec.err;
  RunResult fixed = run("run -m " + model + prompt + " --draft " + oracle +
                        "/mtp/models/gemma4-tiny-a-assistant-f32.gguf --draft-adaptive off");
  ASSERT_EQ(fixed.code, 0) << fixed.err;
  EXPECT_EQ(fixed.out, plain.out);
  // The chat path offers it too.
  RunResult chat = run("run -m " + model + " -p Hi -n 4 -t 2 --temp 0");
  EXPECT_NE(chat.err.find("hint: MTP drafter"), std::string::npos) << chat.err;
  std::filesystem::remove_all(dir);
  std::filesystem::remove(target);
  std::filesystem::remove(drafter);
}

}  // namespace

TEST(Cli, MemoryPlanAutoContextAndRefusal) {
  const std::string model = tmp("plan.gguf");
  ASSERT_EQ(run("synth --shape tiny --type q8_0 -o " + model).code, 0);
  RunResult i = run("info " + model + " --ctx 4096 --mem-limit 64G");
  EXPECT_EQ(i.code, 0) << i.err;
  EXPECT_NE(i.out.find("memory plan (ctx 4096"), std::string::npos) << i.out;
  EXPECT_NE(i.out.find("KV cache"), std::string::npos) << i.out;
  RunResult a = run("info " + model + " --ctx auto --mem-limit 200M");
  EXPECT_EQ(a.code, 0) << a.err;
  EXPECT_NE(a.out.find(" = auto"), std::string::npos) << a.out;
  // Explicit context or auto that cannot fit: refused up front with the plan in the message.
  expect_bad_input(run("run -m " + model + " -p hi --ctx 4096 --mem-limit 2M"),
                   "not enough memory");
  expect_bad_input(run("run -m " + model + " -p hi --ctx auto --mem-limit 1M"),
                   "not enough memory");
  expect_bad_input(run("run -m " + model + " -p hi --mem-limit lots"), "memory size 'lots'");
  RunResult r =
      run("run -m " + model + " -p hi -n 2 -t 2 --ctx auto --mem-limit 200M --kv-commit on");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("memory plan:"), std::string::npos) << r.err;
}
