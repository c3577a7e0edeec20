#include "chat/output_parser.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <system_error>

#include "util/error.h"

namespace ug {
namespace {

constexpr std::string_view kChannelOpen = "<|channel>";
constexpr std::string_view kChannelClose = "<channel|>";
constexpr std::string_view kCallOpen = "<|tool_call>";
constexpr std::string_view kCallClose = "<tool_call|>";
constexpr std::string_view kQuote = "<|\"|>";
constexpr std::string_view kChannelName = "thought\n";
// An empty block may also come as "<|channel>thought<channel|>".
constexpr std::string_view kChannelNameThenClose = "thought<channel|>";

constexpr int kMaxDepth = 128;  // nesting limit: recursion on model output must stay bounded

struct Found {
  size_t pos = std::string::npos;
  std::string_view marker;
};

// Earliest occurrence of any marker (the first listed wins a tie; markers never share a start).
Found find_first(std::string_view text, std::initializer_list<std::string_view> markers) {
  Found best;
  for (std::string_view m : markers) {
    size_t p = text.find(m);
    if (p < best.pos) best = {p, m};
  }
  return best;
}

// Length of the longest suffix of `text` that could be the start of one of `markers`; that much
// must be held back until the next piece says whether the marker completes.
size_t partial_marker_suffix(std::string_view text,
                             std::initializer_list<std::string_view> markers) {
  size_t longest = 0;
  for (std::string_view m : markers) longest = std::max(longest, m.size() - 1);
  for (size_t len = std::min(longest, text.size()); len > 0; --len) {
    std::string_view tail = text.substr(text.size() - len);
    for (std::string_view m : markers) {
      if (m.starts_with(tail)) return len;
    }
  }
  return 0;
}

// Bytes at the end of text[0, end) that form an incomplete UTF-8 sequence (held back so that
// every delta is valid UTF-8 when the detokenizer splits a character across pieces).
size_t incomplete_utf8_tail(std::string_view text, size_t end) {
  const size_t stop = end >= 4 ? end - 4 : 0;
  for (size_t i = end; i > stop; --i) {
    const auto c = static_cast<unsigned char>(text[i - 1]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead byte
    size_t need = 1;
    if (c >= 0xF0) {
      need = 4;
    } else if (c >= 0xE0) {
      need = 3;
    } else if (c >= 0xC0) {
      need = 2;
    }
    const size_t have = end - (i - 1);
    return have < need ? have : 0;
  }
  return 0;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool is_bare_key_char(char c) {
  switch (c) {
    case ':':
    case ',':
    case '{':
    case '}':
    case '[':
    case ']':
    case '<':
    case '>':
    case '"':
      return false;
    default:
      return !is_space(c);
  }
}

// Recursive-descent reader for the native value syntax. Errors name the byte offset in the text.
class NativeReader {
 public:
  explicit NativeReader(std::string_view text, size_t start = 0) : s_(text), pos_(start) {}

  size_t pos() const { return pos_; }
  bool at_end() const { return pos_ >= s_.size(); }
  const std::string& error() const { return error_; }

  void skip_space() {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }

  bool consume(std::string_view literal) {
    if (s_.substr(pos_).starts_with(literal)) {
      pos_ += literal.size();
      return true;
    }
    return false;
  }

  bool fail(const std::string& what) {
    if (error_.empty()) error_ = what + " at byte " + std::to_string(pos_);
    return false;
  }

  bool value(nlohmann::json& out, int depth) {
    skip_space();
    if (at_end()) return fail("expected a value, found the end");
    if (s_.substr(pos_).starts_with(kQuote)) {
      std::string str;
      if (!string(str)) return false;
      out = std::move(str);
      return true;
    }
    const char c = s_[pos_];
    if (c == '{') return object(out, depth + 1);
    if (c == '[') return array(out, depth + 1);
    if (c == '-' || (c >= '0' && c <= '9')) return number(out);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return word(out);
    return fail(std::string("unexpected character '") + c + "'");
  }

  bool object(nlohmann::json& out, int depth) {
    if (depth > kMaxDepth) return fail("nesting deeper than " + std::to_string(kMaxDepth));
    out = nlohmann::json::object();
    ++pos_;  // '{'
    skip_space();
    if (consume("}")) return true;
    while (true) {
      skip_space();
      std::string key;
      if (!object_key(key)) return false;
      skip_space();
      if (!consume(":")) return fail("expected ':' after key '" + key + "'");
      nlohmann::json member;
      if (!value(member, depth)) return false;
      out[key] = std::move(member);
      skip_space();
      if (consume(",")) continue;
      if (consume("}")) return true;
      return fail(at_end() ? "object not closed" : "expected ',' or '}'");
    }
  }

 private:
  bool string(std::string& out) {
    const size_t end = s_.find(kQuote, pos_ + kQuote.size());
    if (end == std::string_view::npos) return fail("string not closed by <|\"|>");
    pos_ += kQuote.size();
    out.assign(s_.substr(pos_, end - pos_));
    pos_ = end + kQuote.size();
    return true;
  }

  bool object_key(std::string& key) {
    if (s_.substr(pos_).starts_with(kQuote)) return string(key);
    const size_t start = pos_;
    while (pos_ < s_.size() && is_bare_key_char(s_[pos_])) ++pos_;
    if (pos_ == start) return fail(at_end() ? "object not closed" : "expected a key");
    key.assign(s_.substr(start, pos_ - start));
    return true;
  }

  bool array(nlohmann::json& out, int depth) {
    if (depth > kMaxDepth) return fail("nesting deeper than " + std::to_string(kMaxDepth));
    out = nlohmann::json::array();
    ++pos_;  // '['
    skip_space();
    if (consume("]")) return true;
    while (true) {
      nlohmann::json element;
      if (!value(element, depth)) return false;
      out.push_back(std::move(element));
      skip_space();
      if (consume(",")) continue;
      if (consume("]")) return true;
      return fail(at_end() ? "array not closed" : "expected ',' or ']'");
    }
  }

  bool at_delimiter() const {
    return at_end() || is_space(s_[pos_]) || s_[pos_] == ',' || s_[pos_] == '}' || s_[pos_] == ']';
  }

  // JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  bool number(nlohmann::json& out) {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t from = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    const bool negative = consume("-");
    if (consume("0")) {
      // a leading zero stands alone
    } else if (digits() == 0) {
      return fail("malformed number");
    }
    bool integral = true;
    if (consume(".")) {
      integral = false;
      if (digits() == 0) return fail("malformed number");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (!consume("+")) consume("-");
      if (digits() == 0) return fail("malformed number");
    }
    if (!at_delimiter()) return fail("malformed number");
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    if (integral) {
      int64_t i = 0;
      if (auto r = std::from_chars(first, last, i); r.ec == std::errc()) {
        out = i;
        return true;
      }
      uint64_t u = 0;
      if (!negative) {
        if (auto r = std::from_chars(first, last, u); r.ec == std::errc()) {
          out = u;
          return true;
        }
      }
      // Too large for 64-bit integers: fall through to a double, as JSON parsers do.
    }
    double d = 0;
    auto r = std::from_chars(first, last, d);
    if (r.ec != std::errc() || !std::isfinite(d)) {
      pos_ = start;
      return fail("number out of range");
    }
    out = d;
    return true;
  }

  bool word(nlohmann::json& out) {
    const size_t start = pos_;
    while (pos_ < s_.size() &&
           ((s_[pos_] >= 'a' && s_[pos_] <= 'z') || (s_[pos_] >= 'A' && s_[pos_] <= 'Z'))) {
      ++pos_;
    }
    const std::string_view w = s_.substr(start, pos_ - start);
    if (at_delimiter()) {
      if (w == "true") {
        out = true;
        return true;
      }
      if (w == "false") {
        out = false;
        return true;
      }
      // The Jinja template prints a null argument as Python's None; accept it when read back.
      if (w == "null" || w == "None") {
        out = nullptr;
        return true;
      }
    }
    pos_ = start;
    return fail("unexpected bare word (strings must be wrapped in <|\"|>)");
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

bool valid_tool_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (is_space(c) || c == '}' || c == '[' || c == ']' || c == '<' || c == '>' || c == ',' ||
        c == '"') {
      return false;
    }
  }
  return true;
}

std::string_view trim_space(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Python's repr(float): shortest round-trip digits, exponent form below 1e-4 and from 1e16.
std::string python_float_repr(double d) {
  if (!std::isfinite(d)) return "null";  // JSON has no NaN/Infinity (nlohmann dumps null too)
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(r.ptr - buf));  // e.g. "-1.25e-07"
  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits.push_back(c);
  }
  int exponent = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+' ? 1 : 0), sci.data() + sci.size(),
                  exponent);
  if (exponent < -4 || exponent >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += exponent < 0 ? "e-" : "e+";
    const std::string mag = std::to_string(std::abs(exponent));
    if (mag.size() < 2) out.push_back('0');
    out += mag;
  } else if (exponent >= 0) {
    const size_t int_len = static_cast<size_t>(exponent) + 1;
    if (digits.size() <= int_len) {
      out += digits + std::string(int_len - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, int_len) + "." + digits.substr(int_len);
    }
  } else {
    out += "0." + std::string(static_cast<size_t>(-exponent - 1), '0') + digits;
  }
  return out;
}

// Jinja's dictsort default: case-insensitive key order. Byte order breaks ties so the result does
// not depend on the container.
std::vector<const nlohmann::json::object_t::value_type*> sorted_members(const nlohmann::json& obj) {
  std::vector<const nlohmann::json::object_t::value_type*> members;
  for (const auto& kv : obj.get_ref<const nlohmann::json::object_t&>()) members.push_back(&kv);
  auto lower = [](unsigned char c) { return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c; };
  std::sort(members.begin(), members.end(), [&](const auto* a, const auto* b) {
    const std::string& x = a->first;
    const std::string& y = b->first;
    const bool less =
        std::lexicographical_compare(x.begin(), x.end(), y.begin(), y.end(), [&](char p, char q) {
          return lower(static_cast<unsigned char>(p)) < lower(static_cast<unsigned char>(q));
        });
    const bool greater =
        std::lexicographical_compare(y.begin(), y.end(), x.begin(), x.end(), [&](char p, char q) {
          return lower(static_cast<unsigned char>(p)) < lower(static_cast<unsigned char>(q));
        });
    if (less != greater) return less;
    return x < y;
  });
  return members;
}

void format_value(const nlohmann::json& v, bool quote_keys, std::string& out);

void format_members(const nlohmann::json& obj, bool quote_keys, std::string& out) {
  bool first = true;
  for (const auto* kv : sorted_members(obj)) {
    if (!first) out.push_back(',');
    first = false;
    if (quote_keys) {
      out.append(kQuote).append(kv->first).append(kQuote);
    } else {
      out.append(kv->first);
    }
    out.push_back(':');
    format_value(kv->second, quote_keys, out);
  }
}

void format_value(const nlohmann::json& v, bool quote_keys, std::string& out) {
  using T = nlohmann::json::value_t;
  switch (v.type()) {
    case T::string:
      out.append(kQuote).append(v.get_ref<const std::string&>()).append(kQuote);
      break;
    case T::boolean:
      out.append(v.get<bool>() ? "true" : "false");
      break;
    case T::number_integer:
      out.append(std::to_string(v.get<int64_t>()));
      break;
    case T::number_unsigned:
      out.append(std::to_string(v.get<uint64_t>()));
      break;
    case T::number_float:
      out.append(python_float_repr(v.get<double>()));
      break;
    case T::object:
      out.push_back('{');
      format_members(v, quote_keys, out);
      out.push_back('}');
      break;
    case T::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& element : v) {
        if (!first) out.push_back(',');
        first = false;
        format_value(element, quote_keys, out);
      }
      out.push_back(']');
      break;
    }
    default:  // null, and the binary/discarded kinds JSON text cannot hold
      out.append("null");
      break;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Streaming parser

OutputParser::OutputParser(OutputParserOptions options) {
  if (options.start_in_thinking) mode_ = Mode::kThinking;
}

void OutputParser::feed(std::string_view piece, std::vector<OutputEvent>& events) {
  pending_.append(piece);
  process(/*at_end=*/false, events);
}

void OutputParser::finish(std::vector<OutputEvent>& events) {
  process(/*at_end=*/true, events);
  if (mode_ == Mode::kToolCall) {
    call_body_ += pending_;
    pending_.clear();
    end_tool_call(/*terminated=*/false, "the output ended inside it", events);
  }
  mode_ = Mode::kContent;
  channel_name_pending_ = false;
}

void OutputParser::process(bool at_end, std::vector<OutputEvent>& events) {
  bool progressed = true;
  while (progressed) {
    switch (mode_) {
      case Mode::kContent:
        progressed = step_content(at_end, events);
        break;
      case Mode::kThinking:
        progressed = step_thinking(at_end, events);
        break;
      case Mode::kToolCall:
        progressed = step_tool_call(at_end, events);
        break;
    }
  }
}

void OutputParser::emit_text(OutputEventType type, size_t length,
                             std::vector<OutputEvent>& events) {
  if (length == 0) return;
  OutputEvent e;
  e.type = type;
  e.text.assign(pending_, 0, length);
  events.push_back(std::move(e));
  pending_.erase(0, length);
}

namespace {

// Emits everything that cannot be the start of a marker (or of a split UTF-8 character).
size_t safe_length(const std::string& pending, bool at_end,
                   std::initializer_list<std::string_view> markers) {
  if (at_end) return pending.size();
  size_t n = pending.size() - partial_marker_suffix(pending, markers);
  return n - incomplete_utf8_tail(pending, n);
}

}  // namespace

bool OutputParser::step_content(bool at_end, std::vector<OutputEvent>& events) {
  const Found f = find_first(pending_, {kChannelOpen, kCallOpen, kChannelClose});
  if (f.pos == std::string::npos) {
    emit_text(OutputEventType::kContent,
              safe_length(pending_, at_end, {kChannelOpen, kCallOpen, kChannelClose}), events);
    return false;
  }
  emit_text(OutputEventType::kContent, f.pos, events);
  pending_.erase(0, f.marker.size());
  if (f.marker == kChannelOpen) {
    mode_ = Mode::kThinking;
    channel_name_pending_ = true;
  } else if (f.marker == kCallOpen) {
    mode_ = Mode::kToolCall;
    call_body_.clear();
    call_in_string_ = false;
  }
  // A stray <channel|> outside the channel is a control token, not content: dropped.
  return true;
}

bool OutputParser::step_thinking(bool at_end, std::vector<OutputEvent>& events) {
  if (channel_name_pending_) {
    std::string_view p = pending_;
    if (p.starts_with(kChannelName)) {
      pending_.erase(0, kChannelName.size());
    } else if (p.starts_with(kChannelNameThenClose)) {
      pending_.erase(0, kChannelName.size() - 1);  // "thought", leaving <channel|>
    } else if (!at_end && (kChannelName.starts_with(p) || kChannelNameThenClose.starts_with(p))) {
      return false;  // cannot tell yet whether the channel name follows
    } else if (at_end && p == kChannelName.substr(0, kChannelName.size() - 1)) {
      pending_.clear();
    }
    channel_name_pending_ = false;
    return true;
  }
  const Found f = find_first(pending_, {kChannelClose, kCallOpen});
  if (f.pos == std::string::npos) {
    emit_text(OutputEventType::kThinking, safe_length(pending_, at_end, {kChannelClose, kCallOpen}),
              events);
    return false;
  }
  emit_text(OutputEventType::kThinking, f.pos, events);
  pending_.erase(0, f.marker.size());
  if (f.marker == kChannelClose) {
    mode_ = Mode::kContent;
  } else {
    // A call opened without closing the channel: the call is what matters, so the thought ends.
    mode_ = Mode::kToolCall;
    call_body_.clear();
    call_in_string_ = false;
  }
  return true;
}

bool OutputParser::step_tool_call(bool at_end, std::vector<OutputEvent>& events) {
  auto move_to_body = [&](size_t length) {
    call_body_.append(pending_, 0, length);
    pending_.erase(0, length);
  };
  if (call_in_string_) {
    // Inside a string only <|"|> matters: "}", "<tool_call|>" and the like are string content.
    const size_t p = pending_.find(kQuote);
    if (p == std::string::npos) {
      move_to_body(safe_length(pending_, at_end, {kQuote}));
      return false;
    }
    move_to_body(p + kQuote.size());
    call_in_string_ = false;
    return true;
  }
  const Found f = find_first(pending_, {kQuote, kCallClose, kCallOpen});
  if (f.pos == std::string::npos) {
    move_to_body(safe_length(pending_, at_end, {kQuote, kCallClose, kCallOpen}));
    return false;
  }
  if (f.marker == kQuote) {
    move_to_body(f.pos + kQuote.size());
    call_in_string_ = true;
    return true;
  }
  move_to_body(f.pos);
  pending_.erase(0, f.marker.size());
  if (f.marker == kCallClose) {
    end_tool_call(/*terminated=*/true, {}, events);
    mode_ = Mode::kContent;
  } else {
    // A new call starts before this one closed: report this one, parse the next.
    end_tool_call(/*terminated=*/false, "a new <|tool_call> began before <tool_call|>", events);
  }
  return true;
}

void OutputParser::end_tool_call(bool terminated, std::string_view reason,
                                 std::vector<OutputEvent>& events) {
  OutputEvent e;
  std::string error;
  if (terminated && parse_native_tool_call(call_body_, e.tool_call, error)) {
    e.type = OutputEventType::kToolCall;
  } else {
    e.type = OutputEventType::kError;
    e.text.append(kCallOpen).append(call_body_);
    if (terminated) {
      e.text.append(kCallClose);
      e.error = std::move(error);
    } else {
      e.error = "tool call not closed by <tool_call|>: " + std::string(reason);
    }
  }
  events.push_back(std::move(e));
  call_body_.clear();
  call_in_string_ = false;
}

ParsedOutput parse_model_output(std::string_view text, OutputParserOptions options) {
  OutputParser parser(options);
  std::vector<OutputEvent> events;
  parser.feed(text, events);
  ParsedOutput out;
  out.thinking_unterminated = parser.in_thinking();
  parser.finish(events);
  for (OutputEvent& e : events) {
    switch (e.type) {
      case OutputEventType::kContent:
        out.content += e.text;
        break;
      case OutputEventType::kThinking:
        out.thinking += e.text;
        break;
      case OutputEventType::kToolCall:
        out.tool_calls.push_back(std::move(e.tool_call));
        break;
      case OutputEventType::kError:
        out.errors.push_back({std::move(e.text), std::move(e.error)});
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Native syntax

bool parse_native_tool_call(std::string_view body, ParsedToolCall& out, std::string& error) {
  NativeReader reader(body);
  reader.skip_space();
  if (!reader.consume("call:")) {
    reader.fail("expected 'call:'");
    error = "tool call: " + reader.error();
    return false;
  }
  const size_t name_start = reader.pos();
  const size_t brace = body.find('{', name_start);
  const std::string_view name = trim_space(body.substr(
      name_start, brace == std::string_view::npos ? body.size() - name_start : brace - name_start));
  if (brace == std::string_view::npos) {
    error = "tool call: no '{' after the tool name";
    return false;
  }
  if (!valid_tool_name(name)) {
    error = "tool call: invalid tool name '" + std::string(name) + "' at byte " +
            std::to_string(name_start);
    return false;
  }
  NativeReader at_brace(body, brace);
  nlohmann::json arguments;
  bool ok = at_brace.object(arguments, 1);
  if (ok) {
    at_brace.skip_space();
    if (!at_brace.at_end()) ok = at_brace.fail("unexpected text after the arguments");
  }
  if (!ok) {
    error = "tool call '" + std::string(name) + "': " + at_brace.error();
    return false;
  }
  out.name.assign(name);
  out.arguments = std::move(arguments);
  return true;
}

nlohmann::json parse_native_value(std::string_view text) {
  NativeReader reader(text);
  nlohmann::json out;
  bool ok = reader.value(out, 0);
  if (ok) {
    reader.skip_space();
    if (!reader.at_end()) ok = reader.fail("unexpected text after the value");
  }
  if (!ok) throw Error("native value: " + reader.error());
  return out;
}

std::string format_native_value(const nlohmann::json& value, bool quote_keys) {
  std::string out;
  format_value(value, quote_keys, out);
  return out;
}

std::string format_native_tool_call(std::string_view name, const nlohmann::json& arguments) {
  std::string out;
  out.append(kCallOpen).append("call:").append(name).push_back('{');
  if (arguments.is_object()) {
    format_members(arguments, /*quote_keys=*/false, out);
  } else if (arguments.is_string()) {
    out.append(arguments.get_ref<const std::string&>());
  }
  out.push_back('}');
  out.append(kCallClose);
  return out;
}

}  // namespace ug
