#include "server/reply_text.h"

#include <algorithm>

namespace ug::server {

ReplyText::ReplyText(const Tokenizer& tokenizer, bool parse_markers, std::vector<std::string> stops)
    : decoder_(tokenizer, /*render_special=*/false),
      parse_markers_(parse_markers),
      stops_(std::move(stops)) {
  for (const auto& s : stops_) max_stop_ = std::max(max_stop_, s.size());
}

namespace {
// Largest n <= size such that text[0, n) does not end inside a UTF-8 sequence.
size_t utf8_boundary(const std::string& text, size_t n) {
  while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return n;
}
}  // namespace

void ReplyText::add_content(const std::string& text, ReplyDelta& d, bool at_end) {
  if (stopped_) return;
  held_ += text;
  if (!stops_.empty()) {
    size_t first = std::string::npos;
    for (const auto& s : stops_) first = std::min(first, held_.find(s));
    if (first != std::string::npos) {
      d.content += held_.substr(0, first);
      content_ += held_.substr(0, first);
      held_.clear();
      stopped_ = true;
      return;
    }
  }
  size_t release = held_.size();
  if (!at_end && max_stop_ > 1) {
    release = held_.size() > max_stop_ - 1 ? held_.size() - (max_stop_ - 1) : 0;
  }
  if (!at_end) release = utf8_boundary(held_, release);
  d.content += held_.substr(0, release);
  content_ += held_.substr(0, release);
  held_.erase(0, release);
}

void ReplyText::route(const std::vector<OutputEvent>& events, ReplyDelta& d, bool at_end) {
  for (const OutputEvent& e : events) {
    if (stopped_) return;
    switch (e.type) {
      case OutputEventType::kContent:
      case OutputEventType::kError:  // a malformed call stays visible as text
        add_content(e.text, d, false);
        break;
      case OutputEventType::kThinking:
        d.reasoning += e.text;
        reasoning_ += e.text;
        break;
      case OutputEventType::kToolCall:
        d.tool_calls.push_back(e.tool_call);
        tool_calls_.push_back(e.tool_call);
        break;
    }
  }
  if (at_end) add_content("", d, true);
}

ReplyDelta ReplyText::push(const std::vector<int32_t>& tokens) {
  ReplyDelta d;
  std::string text;
  for (int32_t t : tokens) text += decoder_.push(t);
  if (parse_markers_) {
    std::vector<OutputEvent> events;
    parser_.feed(text, events);
    route(events, d, false);
  } else {
    add_content(text, d, false);
  }
  return d;
}

ReplyDelta ReplyText::finish() {
  ReplyDelta d;
  const std::string text = decoder_.flush();
  if (parse_markers_) {
    std::vector<OutputEvent> events;
    parser_.feed(text, events);
    parser_.finish(events);
    route(events, d, true);
  } else {
    add_content(text, d, true);
  }
  return d;
}

}  // namespace ug::server
