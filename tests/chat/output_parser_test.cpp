#include "chat/output_parser.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "test_support.h"
#include "util/error.h"

namespace ug {
namespace {

using nlohmann::json;

const std::string Q = "<|\"|>";  // the native string delimiter

// Events reduced to comparable strings, adjacent text deltas of one kind merged (how a stream is
// split must not change what it means).
std::vector<std::string> normalized(const std::vector<OutputEvent>& events) {
  std::vector<std::string> out;
  OutputEventType last = OutputEventType::kToolCall;
  for (const OutputEvent& e : events) {
    switch (e.type) {
      case OutputEventType::kContent:
      case OutputEventType::kThinking: {
        const std::string tag = e.type == OutputEventType::kContent ? "C:" : "T:";
        if (!out.empty() && last == e.type) {
          out.back() += e.text;
        } else {
          out.push_back(tag + e.text);
        }
        break;
      }
      case OutputEventType::kToolCall:
        out.push_back("F:" + e.tool_call.name + " " + e.tool_call.arguments.dump());
        break;
      case OutputEventType::kError:
        out.push_back("E:" + e.text + " | " + e.error);
        break;
    }
    last = e.type;
  }
  return out;
}

std::vector<OutputEvent> run(const std::vector<std::string>& pieces,
                             OutputParserOptions options = {}) {
  OutputParser parser(options);
  std::vector<OutputEvent> events;
  for (const std::string& piece : pieces) parser.feed(piece, events);
  parser.finish(events);
  return events;
}

std::vector<std::string> run_whole(const std::string& text, OutputParserOptions options = {}) {
  return normalized(run({text}, options));
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// The texts the split tests stream in every possible way.
std::vector<std::string> tricky_texts() {
  return {
      // thinking, then a call
      "<|channel>thought\nThe user wants weather.\nCall the tool.<channel|><|tool_call>call:"
      "get_weather{city:" +
          Q + "Paris" + Q + ",unit:" + Q + "celsius" + Q + "}<tool_call|>",
      // content around two calls, nested arguments
      "Sure.\n<|tool_call>call:create_event{attendees:[" + Q + "a@x.org" + Q + "," + Q + "b@y.org" +
          Q + "],priority:-2,remote:false,rooms:[{floor:3,name:" + Q + "Blue" + Q +
          "}],when:{end:" + Q + "11:00" + Q + ",start:" + Q + "10:00" + Q +
          "}}<tool_call|><|tool_call>call:get_time{}<tool_call|>Done!",
      // a string holding everything that looks like syntax or markers
      "<|tool_call>call:echo{text:" + Q +
          "a}b,c:d\"e\n{[<|\" |> <tool_call|> <|tool_call> "
          "<channel|> <|channel> |> <|" +
          Q + ",n:1}<tool_call|>after",
      // unicode everywhere
      "Grüße 🌍 → <|channel>thought\nпривет 日本<channel|>ok <|tool_call>call:translate{"
      "ключ:" +
          Q + "日本語 😀" + Q + "}<tool_call|>✓",
      // malformed call, then the stream goes on
      "a<|tool_call>call:f{city:Paris}<tool_call|>b<|tool_call>call:g{x:1}<tool_call|>c",
      // a call cut off by the end of the stream
      "x<|tool_call>call:f{a:" + Q + "open string",
      // thinking never closed
      "<|channel>thought\nstill thinking <|chan",
      // marker look-alikes in plain content
      "a < b, <|chan <tool <|\"| x |> <channel <|tool_call",
  };
}

TEST(OutputParser, PlainContentStreamsImmediately) {
  OutputParser parser;
  std::vector<OutputEvent> events;
  parser.feed("Hello", events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, OutputEventType::kContent);
  EXPECT_EQ(events[0].text, "Hello");
  parser.feed(" wor<", events);  // "<" might start a marker: held back
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].text, " wor");
  parser.feed("ld", events);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[2].text, "<ld");
  parser.finish(events);
  EXPECT_EQ(events.size(), 3u);
}

TEST(OutputParser, ThinkingThenContent) {
  ParsedOutput out = parse_model_output("<|channel>thought\nStep 1.\nStep 2.<channel|>Answer: 42");
  EXPECT_EQ(out.thinking, "Step 1.\nStep 2.");
  EXPECT_EQ(out.content, "Answer: 42");
  EXPECT_FALSE(out.thinking_unterminated);
  EXPECT_TRUE(out.tool_calls.empty());
  EXPECT_TRUE(out.errors.empty());
}

TEST(OutputParser, ThinkingNeverClosed) {
  ParsedOutput out = parse_model_output("<|channel>thought\nI keep thinking");
  EXPECT_EQ(out.thinking, "I keep thinking");
  EXPECT_EQ(out.content, "");
  EXPECT_TRUE(out.thinking_unterminated);
  EXPECT_TRUE(out.errors.empty());
}

TEST(OutputParser, ChannelNameVariants) {
  EXPECT_EQ(run_whole("<|channel>thought\n<channel|>Hi"), (std::vector<std::string>{"C:Hi"}));
  EXPECT_EQ(run_whole("<|channel>thought<channel|>Hi"), (std::vector<std::string>{"C:Hi"}));
  // No channel name: the text is kept whole.
  EXPECT_EQ(run_whole("<|channel>just this<channel|>Hi"),
            (std::vector<std::string>{"T:just this", "C:Hi"}));
  EXPECT_EQ(run_whole("<|channel>thoughtful<channel|>"),
            (std::vector<std::string>{"T:thoughtful"}));
  // Only the first "thought\n" is the name.
  EXPECT_EQ(run_whole("<|channel>thought\nthought\nx<channel|>"),
            (std::vector<std::string>{"T:thought\nx"}));
  EXPECT_EQ(run_whole("<|channel>thought"), (std::vector<std::string>{}));
}

TEST(OutputParser, StartInThinking) {
  OutputParserOptions options;
  options.start_in_thinking = true;
  ParsedOutput out = parse_model_output("reasoning here<channel|>final", options);
  EXPECT_EQ(out.thinking, "reasoning here");
  EXPECT_EQ(out.content, "final");
}

TEST(OutputParser, StrayChannelCloseInContentIsDropped) {
  EXPECT_EQ(run_whole("a<channel|>b"), (std::vector<std::string>{"C:ab"}));
}

TEST(OutputParser, SimpleToolCall) {
  ParsedOutput out =
      parse_model_output("<|tool_call>call:get_weather{city:" + Q + "Paris" + Q + "}<tool_call|>");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].name, "get_weather");
  EXPECT_EQ(out.tool_calls[0].arguments, json({{"city", "Paris"}}));
  EXPECT_EQ(out.content, "");
  EXPECT_TRUE(out.errors.empty());
}

TEST(OutputParser, EmptyArguments) {
  ParsedOutput out = parse_model_output("<|tool_call>call:get_time{}<tool_call|>");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].name, "get_time");
  EXPECT_TRUE(out.tool_calls[0].arguments.is_object());
  EXPECT_TRUE(out.tool_calls[0].arguments.empty());
}

TEST(OutputParser, NestedArgumentsAndAllValueKinds) {
  const std::string text = "<|tool_call>call:create_event{attendees:[" + Q + "a@x.org" + Q + "," +
                           Q + "b@y.org" + Q +
                           "],priority:-2,remote:false,rooms:[{floor:3,name:" + Q + "Blue" + Q +
                           "}],title:" + Q + "Sync \"Q4\" review" + Q + ",when:{end:" + Q +
                           "2026-12-01T11:00" + Q + ",start:" + Q + "2026-12-01T10:00" + Q +
                           "},n:{a:0,b:-12,c:3.25,d:-1.5e-3,e:2E+10,f:18446744073709551615,"
                           "g:null,h:true,i:[],j:{},k:[[1,[2]],{x:[]}],l:None}}<tool_call|>";
  ParsedOutput out = parse_model_output(text);
  ASSERT_EQ(out.tool_calls.size(), 1u) << (out.errors.empty() ? "" : out.errors[0].message);
  const json& a = out.tool_calls[0].arguments;
  EXPECT_EQ(a["attendees"], json({"a@x.org", "b@y.org"}));
  EXPECT_EQ(a["priority"], -2);
  EXPECT_TRUE(a["priority"].is_number_integer());
  EXPECT_EQ(a["remote"], false);
  EXPECT_EQ(a["rooms"], json::parse(R"([{"floor":3,"name":"Blue"}])"));
  EXPECT_EQ(a["title"], "Sync \"Q4\" review");
  EXPECT_EQ(a["when"]["start"], "2026-12-01T10:00");
  const json& n = a["n"];
  EXPECT_EQ(n["a"], 0);
  EXPECT_EQ(n["b"], -12);
  EXPECT_DOUBLE_EQ(n["c"].get<double>(), 3.25);
  EXPECT_DOUBLE_EQ(n["d"].get<double>(), -1.5e-3);
  EXPECT_DOUBLE_EQ(n["e"].get<double>(), 2e10);
  EXPECT_TRUE(n["e"].is_number_float());
  EXPECT_EQ(n["f"].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_TRUE(n["g"].is_null());
  EXPECT_EQ(n["h"], true);
  EXPECT_EQ(n["i"], json::array());
  EXPECT_EQ(n["j"], json::object());
  EXPECT_EQ(n["k"], json::parse(R"([[1,[2]],{"x":[]}])"));
  EXPECT_TRUE(n["l"].is_null());  // Python's None, as the Jinja template would print a null
}

TEST(OutputParser, StringsHoldSyntaxAndMarkerLookAlikes) {
  const std::string inner =
      "a}b,c:d\"e'\n{[ <|\" |> <tool_call|> <|tool_call> <channel|> <|channel> |> <|";
  ParsedOutput out =
      parse_model_output("<|tool_call>call:echo{text:" + Q + inner + Q + ",n:1}<tool_call|>tail");
  ASSERT_EQ(out.tool_calls.size(), 1u) << (out.errors.empty() ? "" : out.errors[0].message);
  EXPECT_EQ(out.tool_calls[0].arguments["text"], inner);
  EXPECT_EQ(out.tool_calls[0].arguments["n"], 1);
  EXPECT_EQ(out.content, "tail");
  EXPECT_EQ(out.thinking, "");
}

TEST(OutputParser, SeveralCallsWithContentAround) {
  ParsedOutput out = parse_model_output(
      "Let me look.\n<|tool_call>call:a{x:1}<tool_call|>"
      "<|tool_call>call:b{y:" +
      Q + "z" + Q + "}<tool_call|>\nThen more.");
  ASSERT_EQ(out.tool_calls.size(), 2u);
  EXPECT_EQ(out.tool_calls[0].name, "a");
  EXPECT_EQ(out.tool_calls[0].arguments, json({{"x", 1}}));
  EXPECT_EQ(out.tool_calls[1].name, "b");
  EXPECT_EQ(out.tool_calls[1].arguments, json({{"y", "z"}}));
  EXPECT_EQ(out.content, "Let me look.\n\nThen more.");
}

TEST(OutputParser, EventOrderIsPreserved) {
  EXPECT_EQ(run_whole("<|channel>thought\nhm<channel|>A<|tool_call>call:f{}<tool_call|>B"),
            (std::vector<std::string>{"T:hm", "C:A", "F:f {}", "C:B"}));
}

TEST(OutputParser, ToolCallInsideAnUnclosedThoughtEndsTheThought) {
  EXPECT_EQ(run_whole("<|channel>thought\nI will call<|tool_call>call:f{a:1}<tool_call|>done"),
            (std::vector<std::string>{"T:I will call", "F:f {\"a\":1}", "C:done"}));
}

TEST(OutputParser, UnicodeContentThinkingAndArguments) {
  ParsedOutput out = parse_model_output(
      "Grüße 🌍<|channel>thought\nпривет<channel|>日本 <|tool_call>call:translate{ключ:" + Q +
      "日本語 😀" + Q + "}<tool_call|>");
  EXPECT_EQ(out.content, "Grüße 🌍日本 ");
  EXPECT_EQ(out.thinking, "привет");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].arguments, json({{"ключ", "日本語 😀"}}));
}

TEST(OutputParser, WhitespaceBetweenTokensIsTolerated) {
  ParsedOutput out =
      parse_model_output("<|tool_call> call:f { a : 1 , b : [ 1 , 2 ] }\n<tool_call|>");
  ASSERT_EQ(out.tool_calls.size(), 1u) << (out.errors.empty() ? "" : out.errors[0].message);
  EXPECT_EQ(out.tool_calls[0].name, "f");
  EXPECT_EQ(out.tool_calls[0].arguments, json::parse(R"({"a":1,"b":[1,2]})"));
}

TEST(OutputParser, MalformedCallsAreReportedWithRawText) {
  struct Case {
    std::string body;
    std::string expect_in_error;
  };
  const std::vector<Case> cases = {
      {"call:f{a 1}", "expected ':' after key 'a'"},
      {"call:f{city:Paris}", "bare word"},
      {"call:f{a:1,}", "expected a key"},
      {"call:f{a:1 b:2}", "expected ',' or '}'"},
      {"call:f{a:[1,2}", "expected ',' or ']'"},
      {"call:f{a:01}", "malformed number"},
      {"call:f{a:1.}", "malformed number"},
      {"call:f{a:-}", "malformed number"},
      {"call:f{a:1e999}", "out of range"},
      {"call:f{a:1", "object not closed"},
      {"call:f{a:1}junk", "unexpected text after the arguments"},
      {"call f{}", "expected 'call:'"},
      {"func:f{}", "expected 'call:'"},
      {"call:{a:1}", "invalid tool name"},
      {"call:my tool{}", "invalid tool name"},
      {"call:f", "no '{'"},
      {"call:f[1]", "no '{'"},
      {"", "expected 'call:'"},
  };
  for (const Case& c : cases) {
    const std::string raw = "<|tool_call>" + c.body + "<tool_call|>";
    ParsedOutput out = parse_model_output("before " + raw + " after");
    EXPECT_TRUE(out.tool_calls.empty()) << c.body;
    ASSERT_EQ(out.errors.size(), 1u) << c.body;
    EXPECT_EQ(out.errors[0].raw, raw);
    EXPECT_NE(out.errors[0].message.find(c.expect_in_error), std::string::npos)
        << c.body << " -> " << out.errors[0].message;
    EXPECT_EQ(out.content, "before  after") << c.body;
  }
}

TEST(OutputParser, ParseNativeToolCallDirectly) {
  ParsedToolCall call;
  std::string error;
  EXPECT_TRUE(parse_native_tool_call("call:f{a:" + Q + "x" + Q + "}", call, error)) << error;
  EXPECT_EQ(call.name, "f");
  EXPECT_EQ(call.arguments, json({{"a", "x"}}));
  // Inside a stream an open string swallows <tool_call|>, so this is only reachable directly.
  EXPECT_FALSE(parse_native_tool_call("call:f{a:" + Q + "x}", call, error));
  EXPECT_EQ(error, "tool call 'f': string not closed by <|\"|> at byte 9");
}

TEST(OutputParser, ErrorMessagesNameTheToolAndOffset) {
  ParsedOutput out = parse_model_output("<|tool_call>call:get_weather{city 1}<tool_call|>");
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].message,
            "tool call 'get_weather': expected ':' after key 'city' at byte 22");
}

TEST(OutputParser, UnterminatedCallAtEndOfStream) {
  ParsedOutput out = parse_model_output("x<|tool_call>call:f{a:1");
  EXPECT_EQ(out.content, "x");
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].raw, "<|tool_call>call:f{a:1");
  EXPECT_NE(out.errors[0].message.find("not closed"), std::string::npos);

  // An open string swallows the close marker: the call never ends, and all of it is reported.
  out = parse_model_output("<|tool_call>call:f{a:" + Q + "text<tool_call|>more");
  EXPECT_TRUE(out.tool_calls.empty());
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].raw, "<|tool_call>call:f{a:" + Q + "text<tool_call|>more");
  EXPECT_EQ(out.content, "");

  out = parse_model_output("<|tool_call>");
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].raw, "<|tool_call>");
}

TEST(OutputParser, NewCallBeforeCloseReportsTheFirstAndParsesTheSecond) {
  ParsedOutput out =
      parse_model_output("<|tool_call>call:f{a:1<|tool_call>call:g{b:2}<tool_call|>");
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_EQ(out.errors[0].raw, "<|tool_call>call:f{a:1");
  ASSERT_EQ(out.tool_calls.size(), 1u);
  EXPECT_EQ(out.tool_calls[0].name, "g");
  EXPECT_EQ(out.tool_calls[0].arguments, json({{"b", 2}}));
}

TEST(OutputParser, DeepNestingIsAnErrorNotACrash) {
  std::string deep = "call:f{a:" + std::string(100000, '[') + std::string(100000, ']') + "}";
  ParsedOutput out = parse_model_output("<|tool_call>" + deep + "<tool_call|>");
  ASSERT_EQ(out.errors.size(), 1u);
  EXPECT_NE(out.errors[0].message.find("nesting deeper"), std::string::npos);
  // 100 levels is fine.
  std::string ok = "call:f{a:" + std::string(100, '[') + std::string(100, ']') + "}";
  EXPECT_EQ(parse_model_output("<|tool_call>" + ok + "<tool_call|>").tool_calls.size(), 1u);
}

TEST(OutputParser, EverySplitPointGivesTheSameEvents) {
  for (const std::string& text : tricky_texts()) {
    const std::vector<std::string> whole = run_whole(text);
    ASSERT_FALSE(whole.empty());
    for (size_t i = 0; i <= text.size(); ++i) {
      ASSERT_EQ(normalized(run({text.substr(0, i), text.substr(i)})), whole)
          << "split at " << i << " of: " << text;
    }
    std::vector<std::string> bytes;
    for (char c : text) bytes.emplace_back(1, c);
    ASSERT_EQ(normalized(run(bytes)), whole) << "byte by byte: " << text;
  }
}

TEST(OutputParser, EveryPairOfSplitPointsGivesTheSameEvents) {
  const std::string text = "T<|channel>thought\nx<channel|>A<|tool_call>call:f{s:" + Q + "}<|" + Q +
                           ",n:-1.5}<tool_call|>é";
  const std::vector<std::string> whole = run_whole(text);
  EXPECT_EQ(whole, (std::vector<std::string>{"C:T", "T:x", "C:A", "F:f {\"n\":-1.5,\"s\":\"}<|\"}",
                                             "C:é"}));
  for (size_t i = 0; i <= text.size(); ++i) {
    for (size_t j = i; j <= text.size(); ++j) {
      ASSERT_EQ(normalized(run({text.substr(0, i), text.substr(i, j - i), text.substr(j)})), whole)
          << i << "," << j;
    }
  }
}

TEST(OutputParser, RandomFragmentSoupIsSplitInvariant) {
  // Texts glued from syntax fragments and partial markers, fed in random pieces: whatever they
  // mean, the meaning must not depend on the split (and nothing may crash).
  const std::vector<std::string> fragments = {"<|channel>",
                                              "<channel|>",
                                              "<|tool_call>",
                                              "<tool_call|>",
                                              Q,
                                              "call:",
                                              "f",
                                              "{",
                                              "}",
                                              "[",
                                              "]",
                                              ":",
                                              ",",
                                              "1",
                                              "-2.5e3",
                                              "true",
                                              "null",
                                              "a",
                                              "thought\n",
                                              "thought",
                                              "<",
                                              "|",
                                              ">",
                                              "<|",
                                              "|>",
                                              "\"",
                                              " ",
                                              "\n",
                                              "é",
                                              "\xF0\x9F",
                                              "\x8C\x8D",
                                              "x"};
  uint64_t state = 12345;
  auto next = [&](uint64_t bound) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % bound;
  };
  for (int round = 0; round < 400; ++round) {
    std::string text;
    const uint64_t count = 1 + next(30);
    for (uint64_t i = 0; i < count; ++i) text += fragments[next(fragments.size())];
    const std::vector<std::string> whole = run_whole(text);
    for (int attempt = 0; attempt < 5; ++attempt) {
      std::vector<std::string> pieces;
      size_t pos = 0;
      while (pos < text.size()) {
        const size_t len = 1 + next(8);
        pieces.push_back(text.substr(pos, len));
        pos += len;
      }
      ASSERT_EQ(normalized(run(pieces)), whole) << "text: " << text;
    }
  }
}

TEST(OutputParser, SplitTextsParseAsExpected) {
  // What the split tests compare against must itself be right.
  const auto texts = tricky_texts();
  EXPECT_EQ(run_whole(texts[0]),
            (std::vector<std::string>{"T:The user wants weather.\nCall the tool.",
                                      "F:get_weather {\"city\":\"Paris\",\"unit\":\"celsius\"}"}));
  auto second = run_whole(texts[1]);
  ASSERT_EQ(second.size(), 4u);
  EXPECT_EQ(second[0], "C:Sure.\n");
  EXPECT_EQ(second[2], "F:get_time {}");
  EXPECT_EQ(second[3], "C:Done!");
  auto fifth = run_whole(texts[4]);
  ASSERT_EQ(fifth.size(), 5u);
  EXPECT_EQ(fifth[0], "C:a");
  EXPECT_EQ(fifth[1].substr(0, 46), "E:<|tool_call>call:f{city:Paris}<tool_call|> |");
  EXPECT_EQ(fifth[2], "C:b");
  EXPECT_EQ(fifth[3], "F:g {\"x\":1}");
  EXPECT_EQ(fifth[4], "C:c");
  EXPECT_EQ(run_whole(texts[6]), (std::vector<std::string>{"T:still thinking <|chan"}));
  EXPECT_EQ(run_whole(texts[7]), (std::vector<std::string>{"C:" + texts[7]}));
}

TEST(OutputParser, DeltasAreValidUtf8WhenCharactersAreSplit) {
  const std::string text = "é🌍日<|channel>thought\nü😀<channel|>ñ";
  std::vector<std::string> bytes;
  for (char c : text) bytes.emplace_back(1, c);
  for (const OutputEvent& e : run(bytes)) {
    EXPECT_TRUE(valid_utf8(e.text)) << e.text;
  }
  EXPECT_EQ(normalized(run(bytes)), (std::vector<std::string>{"C:é🌍日", "T:ü😀", "C:ñ"}));
}

// ---------------------------------------------------------------------------------------------

TEST(NativeFormat, ScalarsLikeTheTemplate) {
  EXPECT_EQ(format_native_value("Paris"), Q + "Paris" + Q);
  EXPECT_EQ(format_native_value(true), "true");
  EXPECT_EQ(format_native_value(false), "false");
  EXPECT_EQ(format_native_value(nullptr), "null");
  EXPECT_EQ(format_native_value(-2), "-2");
  EXPECT_EQ(format_native_value(18446744073709551615ull), "18446744073709551615");
  // Python repr(float)
  EXPECT_EQ(format_native_value(0.125), "0.125");
  EXPECT_EQ(format_native_value(2.0), "2.0");
  EXPECT_EQ(format_native_value(-0.5), "-0.5");
  EXPECT_EQ(format_native_value(0.1), "0.1");
  EXPECT_EQ(format_native_value(0.0001), "0.0001");
  EXPECT_EQ(format_native_value(0.00001), "1e-05");
  EXPECT_EQ(format_native_value(1.5e-7), "1.5e-07");
  EXPECT_EQ(format_native_value(1e15), "1000000000000000.0");
  EXPECT_EQ(format_native_value(1e16), "1e+16");
  EXPECT_EQ(format_native_value(1.2345678901234568e17), "1.2345678901234568e+17");
  EXPECT_EQ(format_native_value(123456.789), "123456.789");
  EXPECT_EQ(format_native_value(1e300), "1e+300");
  EXPECT_EQ(format_native_value(0.0), "0.0");
  EXPECT_EQ(format_native_value(-0.0), "-0.0");
}

TEST(NativeFormat, ObjectsSortKeysCaseInsensitivelyLikeDictsort) {
  json v = {{"b", 1}, {"A", 2}, {"a", 3}, {"C", json::array({1, "x"})}};
  EXPECT_EQ(format_native_value(v), "{A:2,a:3,b:1,C:[1," + Q + "x" + Q + "]}");
  EXPECT_EQ(format_native_value(json{{"k", json{{"z", 1}, {"y", nullptr}}}}, true),
            "{" + Q + "k" + Q + ":{" + Q + "y" + Q + ":null," + Q + "z" + Q + ":1}}");
}

TEST(NativeFormat, ToolCallMatchesTheTemplateRendering) {
  // Expected text: the chat template's rendering of this call (oracle conversation t34).
  json args = json::parse(R"({"title": "Sync \"Q4\" review", "attendees": ["a@x.org", "b@y.org"],
      "when": {"start": "2026-12-01T10:00", "end": "2026-12-01T11:00"}, "priority": -2,
      "rooms": [{"name": "Blue", "floor": 3}], "remote": false})");
  EXPECT_EQ(format_native_tool_call("create_event", args),
            "<|tool_call>call:create_event{attendees:[" + Q + "a@x.org" + Q + "," + Q + "b@y.org" +
                Q + "],priority:-2,remote:false,rooms:[{floor:3,name:" + Q + "Blue" + Q +
                "}],title:" + Q + "Sync \"Q4\" review" + Q + ",when:{end:" + Q +
                "2026-12-01T11:00" + Q + ",start:" + Q + "2026-12-01T10:00" + Q + "}}<tool_call|>");
  EXPECT_EQ(format_native_tool_call("get_time", json::object()),
            "<|tool_call>call:get_time{}<tool_call|>");
  // String arguments are written verbatim, as the template does.
  EXPECT_EQ(format_native_tool_call("calc", "{\"e\": 1}"),
            "<|tool_call>call:calc{{\"e\": 1}}<tool_call|>");
  EXPECT_EQ(format_native_tool_call("f", nullptr), "<|tool_call>call:f{}<tool_call|>");
}

TEST(NativeFormat, RoundTrips) {
  json v = json::parse(R"({"s": "a}b,c:d\"e\n<|\" |> <tool_call|>", "i": -7, "u": 9007199254740993,
      "f": 0.1, "g": 1e-30, "h": 2.5e+20, "t": true, "n": null, "arr": [1, [2, [3, {}]], "x", []],
      "o": {"deep": {"deeper": {"k": [false, null]}}}, "uni": "日本語 😀", "empty": ""})");
  const std::string text = format_native_value(v);
  EXPECT_EQ(parse_native_value(text), v) << text;
  for (const auto& [key, value] : v.items()) {
    EXPECT_EQ(parse_native_value(format_native_value(value)), value) << key;
  }
  ParsedOutput out = parse_model_output(format_native_tool_call("do_it", v));
  ASSERT_EQ(out.tool_calls.size(), 1u) << (out.errors.empty() ? "" : out.errors[0].message);
  EXPECT_EQ(out.tool_calls[0].name, "do_it");
  EXPECT_EQ(out.tool_calls[0].arguments, v);
}

TEST(NativeFormat, ParseNativeValueRejectsMalformedInput) {
  EXPECT_THROW(parse_native_value(""), Error);
  EXPECT_THROW(parse_native_value("[1,"), Error);
  EXPECT_THROW(parse_native_value("{a:1} x"), Error);
  EXPECT_THROW(parse_native_value("Paris"), Error);
  EXPECT_THROW(parse_native_value(Q + "open"), Error);
  EXPECT_THROW(parse_native_value(std::string(10000, '{')), Error);
  EXPECT_EQ(parse_native_value(" 5 "), 5);
}

TEST(NativeFormat, OracleTemplateToolCallsRenderAndParseBack) {
  UG_REQUIRE_ORACLE(oracle);
  std::ifstream in(oracle + "/template/conversations.jsonl");
  ASSERT_TRUE(in) << "conversations.jsonl missing";
  std::string line;
  int checked = 0;
  while (std::getline(in, line)) {
    const json conv = json::parse(line);
    const std::string& rendered = conv["rendered"].get_ref<const std::string&>();
    for (const json& message : conv["input"]["messages"]) {
      if (!message.contains("tool_calls") || !message["tool_calls"].is_array()) continue;
      for (const json& call : message["tool_calls"]) {
        const json& fn = call["function"];
        const std::string name = fn["name"];
        const std::string text = format_native_tool_call(name, fn["arguments"]);
        EXPECT_NE(rendered.find(text), std::string::npos)
            << conv["id"] << ": " << text << " not in " << rendered;
        if (fn["arguments"].is_object()) {
          ParsedOutput out = parse_model_output(text);
          ASSERT_EQ(out.tool_calls.size(), 1u) << conv["id"];
          EXPECT_EQ(out.tool_calls[0].name, name);
          EXPECT_EQ(out.tool_calls[0].arguments, fn["arguments"]) << conv["id"];
        }
        ++checked;
      }
    }
  }
  EXPECT_GE(checked, 10);
}

}  // namespace
}  // namespace ug
