// Task accuracy of a model on a set of checkable conversations (`unigemma eval`): each example is a
// conversation (messages, tools, thinking flag, media files), the answer it should get, and
// optionally a reference output from another implementation (the PyTorch model that trained
// unigemma-nano), so engine and reference accuracy and their agreement come out of one run.
//
// Set layout (written by training/evaluate.py --dump-set): DIR/examples.jsonl, one JSON object per
// line: {"index", "task", "messages", "tools" (array or null), "thinking", "answer",
// "reference" (optional)}; media parts of messages are {"type": "image"|"audio", "file": NAME}
// with NAME relative to DIR. An answer holding a native tool call is checked as a call (name and
// arguments equal); any other answer as text (case, surrounding space and final punctuation
// ignored, thought channel removed).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/output_parser.h"
#include "runtime/chat_session.h"

namespace ug {

struct EvalExample {
  int index = 0;
  std::string task;
  nlohmann::ordered_json messages;  // media parts carry "source" (absolute path) after loading
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();
  bool thinking = false;
  std::string answer;
  std::string reference;  // another implementation's raw output; empty: none
  bool has_reference = false;
};

// Reads DIR/examples.jsonl. Throws ug::Error naming file, line and field; media files must exist.
std::vector<EvalExample> load_eval_set(const std::string& dir);

// Lower case, thought channel and turn markers removed, surrounding space and final .!? stripped.
std::string normalize_answer(std::string_view text);

// What an output says, reduced to what the checks compare.
struct EvalOutput {
  std::string content;  // normalized
  std::vector<ParsedToolCall> tool_calls;
  bool call_errors = false;  // a tool call was malformed
};
EvalOutput eval_output_of(const ParsedOutput& parsed);
EvalOutput eval_output_of(const ChatReply& reply);

// True when `output` answers `example` (see the header comment).
bool answer_is_correct(const EvalExample& example, const EvalOutput& output);
// True when two outputs say the same (same normalized content and the same calls).
bool same_output(const EvalOutput& a, const EvalOutput& b);

struct EvalResult {
  int index = 0;
  std::string task;
  std::string output;  // the engine's reply: content, then its calls in native syntax
  bool correct = false;
  bool call_expected = false;    // the answer is a tool call
  bool tool_call_valid = false;  // a well-formed call was made
  bool has_reference = false;
  bool reference_correct = false;
  bool same_as_reference = false;
  int generated_tokens = 0;
  double generate_seconds = 0;
  SpeculativeStats speculative;  // with a drafter: this reply's rounds
};

struct EvalTaskSummary {
  int n = 0;
  int correct = 0;
  int with_reference = 0;
  int reference_correct = 0;
  int same_as_reference = 0;
  int calls_expected = 0;
  int calls_valid = 0;
};

// Runs every example through `session` (greedy decoding is the caller's choice of options):
// each conversation replaces the previous one, so the KV cache reuses shared prompt prefixes.
// `progress(done, total)` is called after each example. The session's tools and thinking flag
// are set per example.
std::vector<EvalResult> run_eval(ChatSession& session, const std::vector<EvalExample>& examples,
                                 const std::function<void(int, int)>& progress = {});

// Adds `s`'s counts (per-position vectors element-wise) and seconds to `total`.
void add_speculative_stats(SpeculativeStats& total, const SpeculativeStats& s);

// Per task, in first-appearance order of the results.
std::vector<std::pair<std::string, EvalTaskSummary>> summarize_eval(
    const std::vector<EvalResult>& results);

}  // namespace ug
