#include "runtime/eval.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "util/error.h"

namespace ug {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// Media parts {"type": kind, "file": NAME} become {"type": kind, "source": DIR/NAME}, the form
// ChatSession::load embeds.
void resolve_media(ordered_json& messages, const fs::path& dir, const std::string& where) {
  for (size_t i = 0; i < messages.size(); ++i) {
    ordered_json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      throw Error(where + ": messages[" + std::to_string(i) + "]: expected an object with a role");
    }
    if (!m.contains("content") || !m["content"].is_array()) continue;
    for (size_t k = 0; k < m["content"].size(); ++k) {
      ordered_json& part = m["content"][k];
      MediaKind kind;
      if (!part.is_object() || !part.contains("type") || !part["type"].is_string() ||
          !parse_media_kind(part["type"].get<std::string>(), &kind)) {
        continue;
      }
      const std::string at =
          where + ": messages[" + std::to_string(i) + "].content[" + std::to_string(k) + "]";
      if (!part.contains("file") || !part["file"].is_string()) {
        throw Error(at + ": " + media_kind_name(kind) + " part without a \"file\" name");
      }
      const fs::path file = dir / part["file"].get<std::string>();
      std::error_code ec;
      if (!fs::is_regular_file(file, ec)) throw Error(at + ": " + file.string() + ": no such file");
      part = ordered_json{{"type", media_kind_name(kind)},
                          {"source", fs::absolute(file, ec).lexically_normal().string()}};
    }
  }
}

std::string string_field(const ordered_json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_string()) {
    throw Error(where + ": field '" + key + "': expected a string");
  }
  return j[key].get<std::string>();
}

bool same_calls(const std::vector<ParsedToolCall>& a, const std::vector<ParsedToolCall>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].arguments != b[i].arguments) return false;
  }
  return true;
}

}  // namespace

std::vector<EvalExample> load_eval_set(const std::string& dir) {
  const fs::path file = fs::path(dir) / "examples.jsonl";
  std::ifstream in(file);
  if (!in)
    throw Error(file.string() + ": cannot open (an eval set is a folder with examples.jsonl)");
  std::vector<EvalExample> examples;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = file.string() + ":" + std::to_string(line_no);
    const auto j = ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) throw Error(where + ": not a JSON object");
    EvalExample ex;
    ex.task = string_field(j, "task", where);
    ex.answer = string_field(j, "answer", where);
    if (j.contains("index")) {
      if (!j["index"].is_number_integer())
        throw Error(where + ": field 'index': expected an integer");
      ex.index = j["index"].get<int>();
    } else {
      ex.index = int(examples.size());
    }
    if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty()) {
      throw Error(where + ": field 'messages': expected a non-empty array");
    }
    ex.messages = j["messages"];
    resolve_media(ex.messages, fs::path(dir), where);
    if (j.contains("tools") && !j["tools"].is_null()) {
      if (!j["tools"].is_array()) throw Error(where + ": field 'tools': expected an array or null");
      ex.tools = j["tools"];
    }
    if (j.contains("thinking")) {
      if (!j["thinking"].is_boolean())
        throw Error(where + ": field 'thinking': expected a boolean");
      ex.thinking = j["thinking"].get<bool>();
    }
    if (j.contains("reference") && !j["reference"].is_null()) {
      ex.reference = string_field(j, "reference", where);
      ex.has_reference = true;
    }
    examples.push_back(std::move(ex));
  }
  if (examples.empty()) throw Error(file.string() + ": no examples");
  return examples;
}

std::string normalize_answer(std::string_view text) {
  std::string s;
  // Drop every <|channel>...<channel|> span (an unterminated one runs to the end).
  for (size_t pos = 0; pos < text.size();) {
    const size_t open = text.find("<|channel>", pos);
    if (open == std::string_view::npos) {
      s.append(text.substr(pos));
      break;
    }
    s.append(text.substr(pos, open - pos));
    const size_t close = text.find("<channel|>", open);
    pos = close == std::string_view::npos ? text.size() : close + 10;
  }
  for (size_t at; (at = s.find("<turn|>")) != std::string::npos;) s.erase(at, 7);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  auto trim = [](std::string& t) {
    const size_t b = t.find_first_not_of(" \t\r\n");
    const size_t e = t.find_last_not_of(" \t\r\n");
    t = b == std::string::npos ? std::string() : t.substr(b, e - b + 1);
  };
  trim(s);
  while (!s.empty() && (s.back() == '.' || s.back() == '!' || s.back() == '?')) s.pop_back();
  trim(s);
  return s;
}

EvalOutput eval_output_of(const ParsedOutput& parsed) {
  return EvalOutput{normalize_answer(parsed.content), parsed.tool_calls, !parsed.errors.empty()};
}

EvalOutput eval_output_of(const ChatReply& reply) {
  return EvalOutput{normalize_answer(reply.content), reply.tool_calls, !reply.errors.empty()};
}

namespace {

// `expected` is parse_model_output(answer), parsed once per example by the callers.
bool matches_expected(const ParsedOutput& expected, std::string_view answer,
                      const EvalOutput& output) {
  if (!expected.tool_calls.empty()) {
    const ParsedToolCall& want = expected.tool_calls.front();
    return !output.tool_calls.empty() && output.tool_calls.front().name == want.name &&
           output.tool_calls.front().arguments == want.arguments;
  }
  return output.tool_calls.empty() && output.content == normalize_answer(answer);
}

}  // namespace

bool answer_is_correct(const EvalExample& example, const EvalOutput& output) {
  return matches_expected(parse_model_output(example.answer), example.answer, output);
}

bool same_output(const EvalOutput& a, const EvalOutput& b) {
  return a.content == b.content && a.call_errors == b.call_errors &&
         same_calls(a.tool_calls, b.tool_calls);
}

std::vector<EvalResult> run_eval(ChatSession& session, const std::vector<EvalExample>& examples,
                                 const std::function<void(int, int)>& progress) {
  std::vector<EvalResult> results;
  results.reserve(examples.size());
  for (const EvalExample& ex : examples) {
    session.options().tools = ex.tools;
    session.load(ordered_json{{"messages", ex.messages}, {"enable_thinking", ex.thinking}});
    const ChatReply reply = session.reply(nullptr);
    const EvalOutput out = eval_output_of(reply);
    EvalResult r;
    r.index = ex.index;
    r.task = ex.task;
    r.output = reply.content;
    for (const ParsedToolCall& c : reply.tool_calls) {
      r.output += format_native_tool_call(c.name, c.arguments);
    }
    const ParsedOutput expected = parse_model_output(ex.answer);
    r.correct = matches_expected(expected, ex.answer, out);
    r.call_expected = !expected.tool_calls.empty();
    r.tool_call_valid = !reply.tool_calls.empty() && reply.errors.empty();
    r.has_reference = ex.has_reference;
    if (ex.has_reference) {
      const EvalOutput ref = eval_output_of(parse_model_output(ex.reference));
      r.reference_correct = matches_expected(expected, ex.answer, ref);
      r.same_as_reference = same_output(out, ref);
    }
    r.generated_tokens = reply.stats.generated_tokens;
    r.generate_seconds = reply.stats.generate_seconds;
    r.speculative = session.speculative_stats();
    results.push_back(std::move(r));
    if (progress) progress(int(results.size()), int(examples.size()));
  }
  return results;
}

void add_speculative_stats(SpeculativeStats& total, const SpeculativeStats& s) {
  total.rounds += s.rounds;
  total.drafted += s.drafted;
  total.accepted += s.accepted;
  total.emitted += s.emitted;
  auto add = [](std::vector<int64_t>& into, const std::vector<int64_t>& from) {
    if (into.size() < from.size()) into.resize(from.size());
    for (size_t i = 0; i < from.size(); ++i) into[i] += from[i];
  };
  add(total.drafted_at, s.drafted_at);
  add(total.accepted_at, s.accepted_at);
  add(total.tried_at, s.tried_at);
  add(total.rounds_at_depth, s.rounds_at_depth);
  total.draft_seconds += s.draft_seconds;
  total.verify_seconds += s.verify_seconds;
}

std::vector<std::pair<std::string, EvalTaskSummary>> summarize_eval(
    const std::vector<EvalResult>& results) {
  std::vector<std::pair<std::string, EvalTaskSummary>> tasks;
  for (const EvalResult& r : results) {
    auto it =
        std::find_if(tasks.begin(), tasks.end(), [&](const auto& t) { return t.first == r.task; });
    if (it == tasks.end()) it = tasks.insert(tasks.end(), {r.task, EvalTaskSummary{}});
    EvalTaskSummary& s = it->second;
    ++s.n;
    s.correct += r.correct;
    if (r.has_reference) {
      ++s.with_reference;
      s.reference_correct += r.reference_correct;
      s.same_as_reference += r.same_as_reference;
    }
    if (r.call_expected) {
      ++s.calls_expected;
      s.calls_valid += r.tool_call_valid;
    }
  }
  return tasks;
}

}  // namespace ug
