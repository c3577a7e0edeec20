// ReplyText: model tokens -> content / reasoning / tool calls, with stop strings, on the real
// Gemma 4 vocabulary (tiny-rv's tokenizer). This is the response side of the tools round trip.
#include <gtest/gtest.h>

#include <memory>

#include "model/gemma4/model.h"
#include "server/reply_text.h"
#include "test_support.h"

namespace ug::server {
namespace {

class ReplyTextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    oracle_ = test::oracle_dir();
    if (oracle_.empty()) GTEST_SKIP() << "oracle pack not found; skipping";
    model_ = gemma4::load_model(oracle_ + "/models/tiny-rv/gemma4-tiny-rv-f16.gguf");
    tok_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(*model_->gguf));
  }
  std::vector<int32_t> ids(const std::string& text) {
    EncodeOptions eo;
    eo.parse_special = true;
    return tok_->encode(text, eo);
  }
  std::string oracle_;
  std::unique_ptr<gemma4::Model> model_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(ReplyTextTest, SplitsThinkingContentAndToolCallsOneTokenAtATime) {
  const auto toks =
      ids("<|channel>thought\nThe user wants weather.<channel|>Let me check."
          "<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>,days:3}<tool_call|>");
  ReplyText r(*tok_, true, {});
  std::string content, reasoning;
  std::vector<ParsedToolCall> calls;
  for (int32_t t : toks) {
    const ReplyDelta d = r.push({t});
    content += d.content;
    reasoning += d.reasoning;
    calls.insert(calls.end(), d.tool_calls.begin(), d.tool_calls.end());
  }
  const ReplyDelta end = r.finish();
  content += end.content;
  EXPECT_EQ(reasoning, "The user wants weather.");
  EXPECT_EQ(content, "Let me check.");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(calls[0].arguments["city"], "Paris");
  EXPECT_EQ(calls[0].arguments["days"], 3);
  EXPECT_EQ(r.tool_calls().size(), 1u);
}

TEST_F(ReplyTextTest, StopStringCutsContentEvenAcrossTokens) {
  const auto toks = ids("Hello world, this is the END of it");
  ReplyText r(*tok_, true, {"the EN", "zzz"});
  std::string content;
  for (int32_t t : toks) {
    content += r.push({t}).content;
    if (r.stopped()) break;
  }
  content += r.finish().content;
  EXPECT_TRUE(r.stopped());
  EXPECT_EQ(content, "Hello world, this is ");
}

TEST_F(ReplyTextTest, RawModeKeepsMarkersAsText) {
  ReplyText r(*tok_, false, {});
  std::string content = r.push(ids("a<|tool_call>b")).content;
  content += r.finish().content;
  EXPECT_EQ(content.find("a"), 0u);
  EXPECT_NE(content.find("b"), std::string::npos);
  EXPECT_TRUE(r.tool_calls().empty());
}

}  // namespace
}  // namespace ug::server
