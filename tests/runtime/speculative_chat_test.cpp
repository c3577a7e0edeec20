// Speculative decoding through the chat session (the path run/chat/server use): greedy replies
// with a drafter equal those without one, for thinking prompts, tool-call conversations, a
// second turn that reuses the KV cache left by speculative rounds, and a multimodal prompt whose
// image tokens the drafter attends to through the target's KV cache.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "model/gemma4/decoder.h"
#include "model/gemma4/drafter.h"
#include "model/gemma4/projector.h"
#include "runtime/chat_session.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace ug {
namespace {

using nlohmann::ordered_json;

struct ChatFixture {
  std::unique_ptr<gemma4::Model> target;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<gemma4::DrafterModel> echo, random;
  std::unique_ptr<gemma4::Projector> projector;
};

const ChatFixture& fixture(const std::string& oracle) {
  static ChatFixture f = [&] {
    ChatFixture x;
    const std::string target = oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf";
    x.target = gemma4::load_model(target);
    x.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_gguf(*gguf::File::open(target)));
    x.echo = gemma4::load_drafter(oracle + "/mtp/models/gemma4-tiny-a-assistant-echo-f32.gguf");
    x.random = gemma4::load_drafter(oracle + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf");
    x.projector = gemma4::load_projector(oracle + "/mm/model/mmproj-gemma4-tiny-a-f32.gguf",
                                         x.target->config.n_embd);
    return x;
  }();
  return f;
}

ChatOptions greedy_options(int max_tokens) {
  ChatOptions o;
  o.n_ctx = 1024;
  o.n_ubatch = 64;
  o.cache_type = TensorType::F32;
  o.sampling.temperature = 0;
  o.max_tokens = max_tokens;
  return o;
}

ordered_json weather_tool() {
  return ordered_json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Get the current weather for a city", "parameters": {"type": "object",
      "properties": {"city": {"type": "string", "description": "City name"}},
      "required": ["city"]}}}])");
}

// What a conversation produced: every reply's parts and the final rendered conversation.
struct Transcript {
  std::vector<std::string> parts;
  std::string rendered;
  int64_t drafted = 0, accepted = 0;
};

enum class Scenario { kThinking, kToolCalls, kTwoTurns, kImage };

Transcript converse(const ChatFixture& f, Scenario scenario, const gemma4::DrafterModel* dm,
                    SpeculativeOptions so) {
  ThreadPool pool(1);
  ChatOptions o = greedy_options(scenario == Scenario::kImage ? 64 : 96);
  o.speculative = so;
  if (scenario == Scenario::kThinking) o.enable_thinking = true;
  if (scenario == Scenario::kToolCalls) o.tools = weather_tool();
  ChatSession session(*f.target, *f.tokenizer, pool, o);
  std::unique_ptr<gemma4::Drafter> drafter;
  if (dm) {
    drafter = std::make_unique<gemma4::Drafter>(*dm, *f.target, pool);
    session.set_drafter(drafter.get());
  }
  Transcript t;
  auto record = [&](const ChatReply& r) {
    t.parts.push_back("content:" + r.content);
    t.parts.push_back("thinking:" + r.thinking);
    t.parts.push_back("finish:" + r.finish_reason);
    t.parts.push_back("tokens:" + std::to_string(r.stats.generated_tokens));
    for (const auto& c : r.tool_calls) t.parts.push_back("call:" + c.name + c.arguments.dump());
    t.drafted += session.speculative_stats().drafted;
    t.accepted += session.speculative_stats().accepted;
  };
  switch (scenario) {
    case Scenario::kThinking:
      session.set_system("You are careful. Think before answering.");
      record(session.send("Think step by step: which is larger, 17 * 3 or 50?", nullptr));
      break;
    case Scenario::kToolCalls:
      session.add_message({{"role", "user"}, {"content", "Weather in Paris?"}});
      session.add_message(ordered_json::parse(R"({"role": "assistant", "content": null,
          "tool_calls": [{"type": "function", "id": "c1", "function": {"name": "get_weather",
          "arguments": {"city": "Paris"}}}]})"));
      session.add_message({{"role", "tool"},
                           {"content", "{\"temperature\": 21, \"sky\": \"clear\"}"},
                           {"tool_call_id", "c1"}});
      record(session.reply(nullptr));
      record(session.send("And in Rome? Call the tool again.", nullptr));
      break;
    case Scenario::kTwoTurns:
      record(session.send("Count from one to twenty in words.", nullptr));
      record(session.send("Now backwards, please.", nullptr));
      break;
    case Scenario::kImage:
      session.set_projector(f.projector.get(), MediaOptions{70, 30});
      session.attach(MediaKind::kImage, test::oracle_dir() + "/vision/images/shuttle_tiny.png");
      record(session.send("Describe this picture in detail.", nullptr));
      record(session.send("What colour is it?", nullptr));
      break;
  }
  t.rendered = session.render_prompt();
  return t;
}

TEST(SpeculativeChat, GreedyRepliesEqualPlainForThinkingToolsTurnsAndImages) {
  UG_REQUIRE_ORACLE(oracle);
  const ChatFixture& f = fixture(oracle);
  SpeculativeOptions fixed;
  fixed.adaptive = false;
  fixed.draft_max = 3;
  SpeculativeOptions adaptive;
  adaptive.draft_max = 6;
  const struct {
    Scenario scenario;
    const char* name;
  } scenarios[] = {{Scenario::kThinking, "thinking"},
                   {Scenario::kToolCalls, "tool calls"},
                   {Scenario::kTwoTurns, "two turns"},
                   {Scenario::kImage, "image"}};
  for (const auto& s : scenarios) {
    const Transcript plain = converse(f, s.scenario, nullptr, fixed);
    ASSERT_FALSE(plain.parts.empty());
    for (const gemma4::DrafterModel* dm : {f.echo.get(), f.random.get()}) {
      for (const SpeculativeOptions& so : {fixed, adaptive}) {
        SCOPED_TRACE(std::string(s.name) + ", " + dm->path +
                     (so.adaptive ? ", adaptive" : ", k=3"));
        const Transcript spec = converse(f, s.scenario, dm, so);
        EXPECT_EQ(spec.parts, plain.parts);
        EXPECT_EQ(spec.rendered, plain.rendered);
        if (!so.adaptive) {
          EXPECT_GT(spec.drafted, 0);  // the drafts really ran
        }
        if (dm == f.echo.get() && !so.adaptive) {
          std::printf("[ info ] %s, echo drafter k=3: %lld of %lld drafts accepted\n", s.name,
                      (long long)spec.accepted, (long long)spec.drafted);
        }
      }
    }
  }
}

}  // namespace
}  // namespace ug
