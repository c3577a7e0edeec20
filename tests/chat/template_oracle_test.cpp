// The official Gemma 4 chat template against the oracle: every conversation of
// template/conversations.jsonl must render byte-identical to its `rendered` field.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "test_support.h"
#include "util/error.h"

namespace ug {
namespace {

using nlohmann::ordered_json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<ordered_json> read_conversations(const std::string& oracle) {
  std::ifstream in(oracle + "/template/conversations.jsonl");
  std::vector<ordered_json> records;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) records.push_back(ordered_json::parse(line));
  }
  return records;
}

ordered_json inputs_of(const ordered_json& record) {
  ordered_json inputs = record["input"];
  inputs["bos_token"] = "<bos>";
  return inputs;
}

TEST(ChatTemplateOracle, EmbeddedDefaultIsTheOracleTemplate) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string file = read_file(oracle + "/template/gemma4-chat-template.jinja");
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(default_chat_template(), file);
}

TEST(ChatTemplateOracle, AllConversationsRenderByteIdentical) {
  UG_REQUIRE_ORACLE(oracle);
  const std::vector<ordered_json> records = read_conversations(oracle);
  ASSERT_EQ(records.size(), 40u);
  const ChatTemplate tmpl;  // empty source: the embedded default
  for (const ordered_json& record : records) {
    SCOPED_TRACE(record["id"].get<std::string>() + ": " + record["note"].get<std::string>());
    ASSERT_TRUE(record["engines_agree"].get<bool>());
    EXPECT_EQ(tmpl.render(inputs_of(record)), record["rendered"].get<std::string>());
  }
}

TEST(ChatTemplateOracle, FreeFunctionAndTemplateFromFileAgree) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string source = read_file(oracle + "/template/gemma4-chat-template.jinja");
  const std::vector<ordered_json> records = read_conversations(oracle);
  ASSERT_FALSE(records.empty());
  for (const ordered_json& record : records) {
    SCOPED_TRACE(record["id"].get<std::string>());
    // The template sorts every mapping it prints (dictsort), so key order of the input does not
    // matter: nlohmann::json (sorted keys) must give the same bytes.
    const nlohmann::json sorted = nlohmann::json::parse(inputs_of(record).dump());
    EXPECT_EQ(render_chat_template(source, sorted), record["rendered"].get<std::string>());
  }
}

TEST(ChatTemplateOracle, RendersAQuadraticTemplateOnALongConversationQuickly) {
  // The template scans backwards over earlier messages for every message; 400 turns is ~80k
  // inner iterations. Printed for the report, not asserted (no timing assertions).
  ordered_json messages = ordered_json::array();
  for (int i = 0; i < 400; ++i) {
    messages.push_back({{"role", i % 2 == 0 ? "user" : "assistant"},
                        {"content", "message number " + std::to_string(i)}});
  }
  const ordered_json inputs = {
      {"messages", messages}, {"add_generation_prompt", true}, {"bos_token", "<bos>"}};
  const ChatTemplate tmpl;
  const auto start = std::chrono::steady_clock::now();
  const std::string prompt = tmpl.render(inputs);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(prompt.rfind("<|turn>model\n<|channel>thought\n<channel|>"),
            prompt.size() - std::string("<|turn>model\n<|channel>thought\n<channel|>").size());
  EXPECT_NE(prompt.find("<|turn>user\nmessage number 398<turn|>\n"), std::string::npos);
  std::printf("[ info ] 400-message conversation rendered in %.1f ms (%zu bytes)\n", ms,
              prompt.size());
}

TEST(ChatTemplate, DefaultTemplateWithoutOracle) {
  // Key behaviours of the embedded template, checked without the oracle pack.
  const ordered_json inputs = ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "  Be brief. "},
                 {"role": "user", "content": "Hi"},
                 {"role": "assistant", "content": "<|channel>thought\nplan<channel|>Hello!"},
                 {"role": "user", "content": "Bye"}],
    "add_generation_prompt": true, "bos_token": "<bos>"})");
  EXPECT_EQ(render_chat_template("", inputs),
            "<bos><|turn>system\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n"
            "Hello!<turn|>\n<|turn>user\nBye<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
}

TEST(ChatTemplate, ErrorsNameTheChatTemplate) {
  try {
    ChatTemplate tmpl("{% if x %}");
    FAIL() << "expected a parse error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "chat template: line 1, column 11: unexpected end of template, looking for 'elif' "
              "or 'else' or 'endif' to close 'if'");
  }
  try {
    render_chat_template("{{ raise_exception('System role not supported') }}",
                         ordered_json{{"messages", ordered_json::array()}});
    FAIL() << "expected raise_exception to throw";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "chat template: line 1, column 19: System role not supported");
  }
}

}  // namespace
}  // namespace ug
