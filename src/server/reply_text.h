// Turns a generation's tokens into what the APIs return: UTF-8 text split into content, reasoning
// and tool calls (chat replies), with stop strings applied to the content as it streams.
#pragma once

#include <string>
#include <vector>

#include "chat/output_parser.h"
#include "tokenizer/tokenizer.h"

namespace ug::server {

struct ReplyDelta {
  std::string content;
  std::string reasoning;
  std::vector<ParsedToolCall> tool_calls;
  bool empty() const { return content.empty() && reasoning.empty() && tool_calls.empty(); }
};

class ReplyText {
 public:
  // `parse_markers`: split thinking and tool calls (chat); otherwise all text is content.
  ReplyText(const Tokenizer& tokenizer, bool parse_markers, std::vector<std::string> stops);

  ReplyDelta push(const std::vector<int32_t>& tokens);
  ReplyDelta finish();
  // A stop string was found: generation should end; nothing after it is returned.
  bool stopped() const { return stopped_; }

  const std::string& content() const { return content_; }
  const std::string& reasoning() const { return reasoning_; }
  const std::vector<ParsedToolCall>& tool_calls() const { return tool_calls_; }

 private:
  void route(const std::vector<OutputEvent>& events, ReplyDelta& d, bool at_end);
  void add_content(const std::string& text, ReplyDelta& d, bool at_end);

  StreamDecoder decoder_;
  bool parse_markers_;
  OutputParser parser_;
  std::vector<std::string> stops_;
  size_t max_stop_ = 0;
  std::string held_;  // content not yet released (could be the start of a stop string)
  bool stopped_ = false;
  std::string content_, reasoning_;
  std::vector<ParsedToolCall> tool_calls_;
};

}  // namespace ug::server
