// The eval set reader and the answer checks of `unigemma eval` (runtime/eval.h); the end-to-end
// run on the bundled model is NanoModel.* in tests/cli.
#include "runtime/eval.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_support.h"
#include "util/error.h"

namespace ug {
namespace {

namespace fs = std::filesystem;

EvalExample text_example(const std::string& answer) {
  EvalExample ex;
  ex.answer = answer;
  return ex;
}

TEST(EvalAnswers, NormalizationIgnoresCaseSpaceFinalPunctuationAndThoughts) {
  EXPECT_EQ(normalize_answer("  A circle.  "), "a circle");
  EXPECT_EQ(normalize_answer("Red!?"), "red");
  EXPECT_EQ(normalize_answer("<|channel>thought\n12+7=19<channel|>19<turn|>"), "19");
  EXPECT_EQ(normalize_answer("<|channel>thought never closed"), "");
  EXPECT_EQ(normalize_answer("3.5"), "3.5");  // only trailing punctuation goes
  EXPECT_EQ(normalize_answer("B-R-E-A-D"), "b-r-e-a-d");
}

TEST(EvalAnswers, TextAnswers) {
  const EvalExample ex = text_example("Left.");
  EXPECT_TRUE(answer_is_correct(ex, eval_output_of(parse_model_output("left"))));
  EXPECT_TRUE(answer_is_correct(ex, eval_output_of(parse_model_output("LEFT!"))));
  EXPECT_FALSE(answer_is_correct(ex, eval_output_of(parse_model_output("Right."))));
  EXPECT_FALSE(answer_is_correct(ex, eval_output_of(parse_model_output("left side"))));
  // A call where text was wanted is wrong even if no text differs.
  EXPECT_FALSE(answer_is_correct(
      text_example(""), eval_output_of(parse_model_output("<|tool_call>call:f{}<tool_call|>"))));
}

TEST(EvalAnswers, ToolCallAnswersCompareNameAndTypedArguments) {
  const EvalExample ex = text_example("<|tool_call>call:multiply{a:12,b:34}<tool_call|>");
  auto check = [&](const std::string& out) {
    return answer_is_correct(ex, eval_output_of(parse_model_output(out)));
  };
  EXPECT_TRUE(check("<|tool_call>call:multiply{a:12,b:34}<tool_call|>"));
  EXPECT_TRUE(check("<|tool_call>call:multiply{b:34,a:12}<tool_call|>"));  // order is not meaning
  EXPECT_FALSE(check("<|tool_call>call:multiply{a:12,b:35}<tool_call|>"));
  EXPECT_FALSE(check("<|tool_call>call:multiply{a:<|\"|>12<|\"|>,b:34}<tool_call|>"));  // a string
  EXPECT_FALSE(check("<|tool_call>call:get_time{a:12,b:34}<tool_call|>"));
  EXPECT_FALSE(check("<|tool_call>call:multiply{a:12,b:34"));  // unterminated
  EXPECT_FALSE(check("12 times 34"));
  const EvalExample city =
      text_example("<|tool_call>call:get_weather{city:<|\"|>Rome<|\"|>}<tool_call|>");
  EXPECT_TRUE(answer_is_correct(
      city, eval_output_of(parse_model_output(
                "<|tool_call>call:get_weather{city:<|\"|>Rome<|\"|>}<tool_call|>"))));
}

TEST(EvalAnswers, SameOutputNeedsSameContentAndCalls) {
  auto out = [](const std::string& s) { return eval_output_of(parse_model_output(s)); };
  EXPECT_TRUE(same_output(out("19."), out("19")));
  EXPECT_FALSE(same_output(out("19"), out("18")));
  EXPECT_TRUE(same_output(out("<|tool_call>call:f{x:1}<tool_call|>"),
                          out("<|tool_call>call:f{x:1}<tool_call|>")));
  EXPECT_FALSE(same_output(out("<|tool_call>call:f{x:1}<tool_call|>"),
                           out("<|tool_call>call:f{x:2}<tool_call|>")));
}

struct EvalSetFiles : ::testing::Test {
  void SetUp() override {
    dir = test::process_scratch_dir() /
          ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::create_directories(dir);
  }
  void write(const std::string& text) { std::ofstream(dir / "examples.jsonl") << text; }
  std::string error() {
    try {
      load_eval_set(dir.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  fs::path dir;
};

TEST_F(EvalSetFiles, ReadsExamplesAndResolvesMediaFiles) {
  std::ofstream(dir / "a.png") << "not decoded here";
  write(
      R"({"index": 3, "task": "shape", "messages": [{"role": "user", "content": [{"type": "image", "file": "a.png"}, {"type": "text", "text": "Which shape?"}]}], "tools": null, "thinking": false, "answer": "A circle.", "reference": "A circle."}

{"task": "tool_call", "messages": [{"role": "user", "content": "Weather in Rome?"}], "tools": [{"type": "function", "function": {"name": "get_weather"}}], "thinking": true, "answer": "x"}
)");
  const std::vector<EvalExample> ex = load_eval_set(dir.string());
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].index, 3);
  EXPECT_EQ(ex[0].task, "shape");
  EXPECT_TRUE(ex[0].has_reference);
  const auto& part = ex[0].messages[0]["content"][0];
  EXPECT_EQ(part["type"], "image");
  EXPECT_FALSE(part.contains("file"));
  EXPECT_EQ(fs::path(part["source"].get<std::string>()), fs::absolute(dir / "a.png"));
  EXPECT_TRUE(ex[0].tools.empty());
  EXPECT_EQ(ex[1].index, 1);  // position when the line has none
  EXPECT_TRUE(ex[1].thinking);
  EXPECT_FALSE(ex[1].has_reference);
  EXPECT_EQ(ex[1].tools.size(), 1u);
}

TEST_F(EvalSetFiles, BadSetsNameFileLineAndField) {
  EXPECT_NE(error().find("examples.jsonl: cannot open"), std::string::npos) << error();
  write("");
  EXPECT_NE(error().find("no examples"), std::string::npos) << error();
  write(
      "{\"task\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"answer\": "
      "\"x\"}\n{oops\n");
  EXPECT_NE(error().find("examples.jsonl:2: not a JSON object"), std::string::npos) << error();
  write("{\"task\": \"a\", \"messages\": [], \"answer\": \"x\"}\n");
  EXPECT_NE(error().find(":1: field 'messages'"), std::string::npos) << error();
  write("{\"task\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"q\"}]}\n");
  EXPECT_NE(error().find("field 'answer'"), std::string::npos) << error();
  write(
      R"({"task": "a", "answer": "x", "messages": [{"role": "user", "content": [{"type": "audio", "file": "missing.wav"}]}]})");
  EXPECT_NE(error().find("messages[0].content[0]: "), std::string::npos) << error();
  EXPECT_NE(error().find("missing.wav: no such file"), std::string::npos) << error();
  write(
      R"({"task": "a", "answer": "x", "messages": [{"role": "user", "content": [{"type": "image"}]}]})");
  EXPECT_NE(error().find("image part without a \"file\""), std::string::npos) << error();
  write(
      R"({"task": "a", "answer": "x", "thinking": "yes", "messages": [{"role": "user", "content": "q"}]})");
  EXPECT_NE(error().find("field 'thinking'"), std::string::npos) << error();
}

}  // namespace
}  // namespace ug
