// Parsing what a Gemma 4 model writes in its turn, and writing tool-call values back in the same
// native syntax (spec §6):
//
//   <|channel>thought\n ...reasoning... <channel|>   thinking (the "thought\n" channel name is
//                                                    not part of the thinking text)
//   <|tool_call>call:NAME{key:value,...}<tool_call|> a tool call; strings are <|"|>...<|"|>
//                                                    (anything but <|"|> inside), numbers,
//                                                    true/false/null bare, nested {} and []
//   anything else                                    content
//
// The streaming parser takes decoded text pieces in any split (a marker may straddle pieces) and
// emits content/thinking deltas as soon as they cannot be the start of a marker, and each tool
// call once it is complete. A call that does not parse, or is cut off by the end of the stream,
// becomes an error event carrying its raw text: nothing the model wrote is silently dropped.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ug {

struct ParsedToolCall {
  std::string name;
  nlohmann::json arguments = nlohmann::json::object();  // always an object
};

enum class OutputEventType { kContent, kThinking, kToolCall, kError };

struct OutputEvent {
  OutputEventType type = OutputEventType::kContent;
  // kContent / kThinking: the text delta. kError: the raw text of the malformed call, markers
  // included, so a frontend can show it verbatim.
  std::string text;
  ParsedToolCall tool_call;  // kToolCall only
  std::string error;         // kError only: one line saying what is wrong and where
};

struct OutputParserOptions {
  // The prompt already opened the thought channel (e.g. ended with "<|channel>thought\n"), so
  // the output starts inside it.
  bool start_in_thinking = false;
};

class OutputParser {
 public:
  explicit OutputParser(OutputParserOptions options = {});

  // Appends the events that `piece` completes to `events`.
  void feed(std::string_view piece, std::vector<OutputEvent>& events);
  // End of stream: flushes held-back text; an open tool call becomes an error event.
  void finish(std::vector<OutputEvent>& events);

  bool in_thinking() const { return mode_ == Mode::kThinking; }
  bool in_tool_call() const { return mode_ == Mode::kToolCall; }

 private:
  enum class Mode { kContent, kThinking, kToolCall };
  void process(bool at_end, std::vector<OutputEvent>& events);
  bool step_content(bool at_end, std::vector<OutputEvent>& events);
  bool step_thinking(bool at_end, std::vector<OutputEvent>& events);
  bool step_tool_call(bool at_end, std::vector<OutputEvent>& events);
  void emit_text(OutputEventType type, size_t length, std::vector<OutputEvent>& events);
  void end_tool_call(bool terminated, std::string_view reason, std::vector<OutputEvent>& events);

  Mode mode_ = Mode::kContent;
  std::string pending_;  // received, not yet emitted or consumed
  bool channel_name_pending_ = false;
  std::string call_body_;        // text after <|tool_call> of the open call
  bool call_in_string_ = false;  // inside <|"|>...<|"|> of the open call
};

struct OutputError {
  std::string raw;      // the malformed text, markers included
  std::string message;  // what is wrong
};

struct ParsedOutput {
  std::string content;
  std::string thinking;
  std::vector<ParsedToolCall> tool_calls;
  std::vector<OutputError> errors;
  bool thinking_unterminated = false;  // the output ended inside the thought channel
};

// Whole-text convenience over OutputParser.
ParsedOutput parse_model_output(std::string_view text, OutputParserOptions options = {});

// Parses the text between <|tool_call> and <tool_call|> ("call:NAME{...}"). On failure returns
// false and sets `error` to one line naming the problem and its byte offset.
bool parse_native_tool_call(std::string_view body, ParsedToolCall& out, std::string& error);

// Parses one native value ("<|\"|>text<|\"|>", 12, -1.5e3, true, null, {k:v}, [...]).
// Throws ug::Error on malformed input.
nlohmann::json parse_native_value(std::string_view text);

// Writes `value` the way the chat template's format_argument does: strings wrapped in <|"|>
// (unescaped), object keys sorted case-insensitively (Jinja dictsort) and bare unless
// `quote_keys`, floats as Python's repr (0.125, 1e-05, 2.0), integers and booleans bare. The one
// deliberate difference: null is written "null" (the Jinja template would print Python's "None"),
// so that every value round-trips through parse_native_value.
std::string format_native_value(const nlohmann::json& value, bool quote_keys = false);

// "<|tool_call>call:NAME{k:v,...}<tool_call|>" as the template renders a past call: object
// arguments as sorted bare-key pairs, string arguments verbatim inside the braces, anything
// else as empty braces.
std::string format_native_tool_call(std::string_view name, const nlohmann::json& arguments);

}  // namespace ug
