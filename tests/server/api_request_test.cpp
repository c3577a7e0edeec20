// Request parsing and validation for the OpenAI and Ollama APIs: what is accepted, how it maps to
// the template input, and that every malformed field is a 4xx ApiError naming the field.
#include <gtest/gtest.h>

#include <string>

#include "server/api_request.h"

namespace ug::server {
namespace {

using nlohmann::json;

const SamplerParams kDefaults{};
const RequestLimits kLimits{};

ApiRequest chat(const std::string& body) {
  return parse_openai_chat(json::parse(body), kDefaults, kLimits);
}

// The status and the parameter of the error a body produces.
std::pair<int, std::string> chat_error(const std::string& body,
                                       const RequestLimits& limits = kLimits) {
  try {
    parse_openai_chat(json::parse(body), kDefaults, limits);
  } catch (const ApiError& e) {
    return {e.status, e.param};
  }
  return {0, ""};
}

TEST(OpenAIChat, ParsesSamplingAndOptions) {
  const ApiRequest r = chat(R"({"model":"m","messages":[{"role":"user","content":"hi"}],
    "temperature":0.5,"top_p":0.9,"top_k":20,"min_p":0.1,"seed":7,"max_completion_tokens":33,
    "stop":["END","\n\n"],"stream":true,"stream_options":{"include_usage":true},
    "reasoning_effort":"high","response_format":{"type":"json_object"}})");
  EXPECT_EQ(r.model, "m");
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.top_k, 20);
  EXPECT_FLOAT_EQ(r.sampling.min_p, 0.1f);
  EXPECT_EQ(r.sampling.seed, 7u);
  EXPECT_EQ(r.max_tokens.value(), 33);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"END", "\n\n"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.enable_thinking);
  ASSERT_TRUE(r.json.has_value());
  EXPECT_EQ(*r.json, JsonTop::kObject);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0]["content"], "hi");
}

TEST(OpenAIChat, ThinkingViaTemplateKwargsAndSchemaTop) {
  const ApiRequest r =
      chat(R"({"messages":[{"role":"developer","content":"be brief"},{"role":"user","content":"x"}],
    "chat_template_kwargs":{"enable_thinking":true},
    "response_format":{"type":"json_schema","json_schema":{"name":"a","schema":{"type":"array"}}}})");
  EXPECT_TRUE(r.enable_thinking);
  EXPECT_EQ(r.messages[0]["role"], "system");
  ASSERT_TRUE(r.schema);  // compiled for constrained decoding
  EXPECT_EQ(r.schema->nodes[size_t(r.schema->root)].types, JsonSchema::kArray);
}

TEST(OpenAIChat, SchemasCompileOrNameTheUnsupportedKeyword) {
  const ApiRequest r = chat(R"({"messages":[{"role":"user","content":"x"}],
    "response_format":{"type":"json_schema","json_schema":{"name":"a","strict":true,
      "schema":{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}}}}}})");
  ASSERT_TRUE(r.schema);
  const auto& root = r.schema->nodes[size_t(r.schema->root)];
  EXPECT_FALSE(root.additional);  // strict: only the listed properties, all required
  EXPECT_EQ(root.n_required, 2);
  try {
    chat(R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema",
      "json_schema":{"name":"a","schema":{"type":"object","properties":{"z":{"type":"string",
      "pattern":"^a"}}}}}})");
    FAIL() << "pattern accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "response_format.json_schema.schema");
    EXPECT_NE(std::string(e.what()).find("'pattern'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/properties/z"), std::string::npos) << e.what();
  }
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"x"}],"response_format":{
      "type":"json_schema","json_schema":{"name":"a","schema":{"$ref":"#",
      "type":"object"}}}})")
                .first,
            400);
}

TEST(OpenAIChat, ToolChoiceModes) {
  const std::string tools = R"("tools":[{"type":"function","function":{"name":"a"}},
      {"type":"function","function":{"name":"b"}}])";
  const std::string msgs = R"("messages":[{"role":"user","content":"x"}])";
  EXPECT_EQ(chat("{" + msgs + "," + tools + "}").tool_choice, ToolChoice::kAuto);
  const ApiRequest req = chat("{" + msgs + "," + tools + R"(,"tool_choice":"required"})");
  EXPECT_EQ(req.tool_choice, ToolChoice::kRequired);
  EXPECT_EQ(req.tools.size(), 2u);
  const ApiRequest named = chat("{" + msgs + "," + tools +
                                R"(,"tool_choice":{"type":"function","function":{"name":"b"}}})");
  EXPECT_EQ(named.tool_choice, ToolChoice::kNamed);
  ASSERT_EQ(named.tools.size(), 1u);
  EXPECT_EQ(chat("{" + msgs + "," + tools + R"(,"tool_choice":"none"})").tool_choice,
            ToolChoice::kNone);
  EXPECT_EQ(chat_error("{" + msgs + R"(,"tool_choice":"required"})").second, "tool_choice");
  EXPECT_EQ(chat_error("{" + msgs + "," + tools +
                       R"(,"tool_choice":"required","response_format":{"type":"json_object"}})")
                .second,
            "tool_choice");
}

TEST(OpenAIChat, MediaPartsBecomePlaceholdersInOrder) {
  const ApiRequest r = chat(R"({"messages":[{"role":"user","content":[
    {"type":"text","text":"look"},
    {"type":"image_url","image_url":{"url":"data:image/png;base64,AAEC"}},
    {"type":"input_audio","input_audio":{"data":"AAECAw==","format":"wav"}}]}]})");
  ASSERT_EQ(r.media.size(), 2u);
  EXPECT_EQ(r.media[0].kind, MediaKind::kImage);
  EXPECT_EQ(r.media[0].data, std::string("\x00\x01\x02", 3));
  EXPECT_EQ(r.media[1].kind, MediaKind::kAudio);
  EXPECT_EQ(r.media[1].data, std::string("\x00\x01\x02\x03", 4));
  const auto& parts = r.messages[0]["content"];
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0]["type"], "text");
  EXPECT_EQ(parts[1]["type"], "image");
  EXPECT_EQ(parts[2]["type"], "audio");
}

TEST(OpenAIChat, ToolsAndToolCallRoundTrip) {
  const ApiRequest r = chat(R"({"messages":[
    {"role":"user","content":"weather?"},
    {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
      "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
    {"role":"tool","tool_call_id":"call_1","content":"sunny"}],
    "tools":[{"type":"function","function":{"name":"get_weather","description":"d",
      "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
      {"type":"function","function":{"name":"other"}}],
    "tool_choice":{"type":"function","function":{"name":"get_weather"}}})");
  ASSERT_EQ(r.tools.size(), 1u);  // tool_choice kept only the named function
  EXPECT_EQ(r.tools[0]["function"]["name"], "get_weather");
  const auto& call = r.messages[1]["tool_calls"][0];
  EXPECT_EQ(call["function"]["arguments"]["city"], "Paris");  // parsed into an object
  EXPECT_EQ(r.messages[2]["tool_call_id"], "call_1");
  EXPECT_TRUE(
      chat(
          R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"none"})")
          .tools.empty());
}

TEST(OpenAIChat, BadRequestsNameTheField) {
  EXPECT_EQ(chat_error("[1,2]").first, 400);
  EXPECT_EQ(chat_error(R"({"model":"m"})").second, "messages");
  EXPECT_EQ(chat_error(R"({"messages":[]})").second, "messages");
  EXPECT_EQ(chat_error(R"({"messages":"hi"})").second, "messages");
  EXPECT_EQ(chat_error(R"({"messages":[{"content":"x"}]})").second, "messages[0].role");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"wizard","content":"x"}]})").second,
            "messages[0].role");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":5}]})").second,
            "messages[0].content");
  EXPECT_EQ(
      chat_error(R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})").second,
      "temperature");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"x"}],"temperature":5})").second,
            "temperature");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":-1})").second,
            "max_tokens");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1.5})").second,
            "max_tokens");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"x"}],"stream":"yes"})").second,
            "stream");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})").second,
            "stop[0]");
  EXPECT_EQ(chat_error(R"({"messages":[{"role":"user","content":"x"}],"n":2})").second, "n");
  EXPECT_EQ(
      chat_error(R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"xml"}})")
          .second,
      "response_format.type");
  EXPECT_EQ(
      chat_error(
          R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"a b"}}]})")
          .second,
      "tools[0].function.name");
  EXPECT_EQ(
      chat_error(
          R"({"messages":[{"role":"user","content":"x"}],"tools":[],"tool_choice":{"type":"function","function":{"name":"zz"}}})")
          .second,
      "tool_choice");
  EXPECT_EQ(
      chat_error(
          R"({"messages":[{"role":"assistant","content":"x","tool_calls":[{"function":{"name":"f","arguments":"{oops"}}]}]})")
          .second,
      "messages[0].tool_calls[0].function.arguments");
}

TEST(OpenAIChat, MediaErrorsAndLimits) {
  const std::string part = R"({"type":"image_url","image_url":{"url":"URL"}})";
  auto with_url = [&](const std::string& url) {
    std::string p = part;
    p.replace(p.find("URL"), 3, url);
    return R"({"messages":[{"role":"user","content":[)" + p + "]}]}";
  };
  EXPECT_EQ(chat_error(with_url("data:image/png;base64,@@@@")).first, 400);   // broken base64
  EXPECT_EQ(chat_error(with_url("data:image/png;base64,AAE")).first, 0);      // unpadded is fine
  EXPECT_EQ(chat_error(with_url("data:image/png;base64,A")).first, 400);      // impossible length
  EXPECT_EQ(chat_error(with_url("data:image/png,rawbytes")).first, 400);      // not base64
  EXPECT_EQ(chat_error(with_url("https://example.com/cat.png")).first, 400);  // remote refused
  EXPECT_EQ(chat_error(with_url("file:///etc/passwd")).first, 400);
  RequestLimits remote = kLimits;
  remote.allow_remote_media = true;
  EXPECT_EQ(chat_error(with_url("https://example.com/cat.png"), remote).first, 0);
  RequestLimits two = kLimits;
  two.max_media = 2;
  const std::string img =
      R"({"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}})";
  EXPECT_EQ(
      chat_error(
          R"({"messages":[{"role":"user","content":[)" + img + "," + img + "," + img + "]}]}", two)
          .first,
      400);
  RequestLimits tiny = kLimits;
  tiny.max_media_bytes = 4;
  EXPECT_EQ(chat_error(with_url("data:image/png;base64," + std::string(400, 'A')), tiny).first,
            413);
}

TEST(OpenAICompletion, PromptAndDefaults) {
  const ApiRequest r = parse_openai_completion(
      json::parse(R"({"model":"m","prompt":"Once","echo":true})"), kDefaults, kLimits);
  EXPECT_TRUE(r.raw);
  EXPECT_EQ(r.prompt, "Once");
  EXPECT_EQ(r.max_tokens.value(), 16);
  EXPECT_TRUE(r.echo);
  EXPECT_THROW(parse_openai_completion(json::parse(R"({"prompt":""})"), kDefaults, kLimits),
               ApiError);
  EXPECT_THROW(parse_openai_completion(json::parse(R"({"prompt":[1,2]})"), kDefaults, kLimits),
               ApiError);
}

TEST(Ollama, ChatWithImagesOptionsAndFormat) {
  const ApiRequest r = parse_ollama_chat(json::parse(R"({"model":"g","messages":[
      {"role":"user","content":"what is it","images":["AAAA"]}],
      "options":{"temperature":0,"num_predict":5,"seed":3,"stop":["x"]},"format":"json","think":true})"),
                                         kDefaults, kLimits);
  EXPECT_TRUE(r.stream);  // Ollama's default
  EXPECT_FLOAT_EQ(r.sampling.temperature, 0.0f);
  EXPECT_EQ(r.max_tokens.value(), 5);
  EXPECT_EQ(r.sampling.seed, 3u);
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(*r.json, JsonTop::kObject);
  EXPECT_TRUE(r.enable_thinking);
  ASSERT_EQ(r.media.size(), 1u);
  EXPECT_EQ(r.messages[0]["content"][0]["type"], "image");
  EXPECT_EQ(r.messages[0]["content"][1]["text"], "what is it");
  EXPECT_THROW(parse_ollama_chat(json::parse(R"({"messages":[]})"), kDefaults, kLimits), ApiError);
  EXPECT_THROW(parse_ollama_chat(json::parse(R"({"model":"g","messages":[],"format":"yaml"})"),
                                 kDefaults, kLimits),
               ApiError);
  EXPECT_THROW(
      parse_ollama_chat(
          json::parse(
              R"({"model":"g","messages":[{"role":"user","content":"x","images":["%%"]}]})"),
          kDefaults, kLimits),
      ApiError);
}

TEST(Ollama, GenerateTemplatedAndRaw) {
  const ApiRequest t = parse_ollama_generate(
      json::parse(R"({"model":"g","prompt":"hi","system":"sys","stream":false})"), kDefaults,
      kLimits);
  EXPECT_FALSE(t.raw);
  EXPECT_FALSE(t.stream);
  ASSERT_EQ(t.messages.size(), 2u);
  EXPECT_EQ(t.messages[0]["role"], "system");
  const ApiRequest raw = parse_ollama_generate(
      json::parse(R"({"model":"g","prompt":"abc","raw":true})"), kDefaults, kLimits);
  EXPECT_TRUE(raw.raw);
  EXPECT_EQ(raw.prompt, "abc");
  EXPECT_THROW(parse_ollama_generate(
                   json::parse(R"({"model":"g","prompt":"a","raw":true,"images":["AAAA"]})"),
                   kDefaults, kLimits),
               ApiError);
}

TEST(Base64, RoundTripAndRejects) {
  for (std::string s : {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
                        std::string("\x00\xff\x10 binary", 10)}) {
    EXPECT_EQ(decode_base64(encode_base64(s), "x", 1 << 20), s);
  }
  EXPECT_EQ(decode_base64("aGVs\nbG8=", "x", 100), "hello");
  EXPECT_THROW(decode_base64("aGVs=bG8", "x", 100), ApiError);  // data after padding
  EXPECT_THROW(decode_base64("aGVsbG8===", "x", 100), ApiError);
}

TEST(ApiKey, ConstantTimeCompare) {
  EXPECT_TRUE(constant_time_equal("secret", "secret"));
  EXPECT_FALSE(constant_time_equal("secret", "secreT"));
  EXPECT_FALSE(constant_time_equal("secret", "secret2"));
  EXPECT_FALSE(constant_time_equal("", "x"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

}  // namespace
}  // namespace ug::server
