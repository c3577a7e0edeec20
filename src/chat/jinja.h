// A Jinja2 interpreter for chat templates (our own implementation: lexer -> parser -> AST ->
// tree-walking evaluator). It follows the environment Hugging Face `transformers` renders chat
// templates with: jinja2 ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
// extensions=[loopcontrols]) plus the globals raise_exception / strftime_now and a json.dumps-based
// `tojson` filter. Output is meant to be byte-identical to that environment for the constructs chat
// templates use. Known deviations: upper/lower/title/capitalize change ASCII letters only, integers
// are 64-bit (overflow is an error instead of a big int), and list/dict mutation methods (append,
// update, ...) are allowed although the HF sandbox forbids them.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ug::jinja {

struct Program;

struct Options {
  // Used as the prefix of error messages: "<name>: line 3, column 7: ...".
  std::string name = "template";
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
  // Runaway-template guards. Each limit violation is an error naming the limit.
  size_t max_output_bytes = size_t{32} << 20;  // also bounds every string built while rendering
  uint64_t max_steps = 500'000'000;            // evaluation steps (nodes, loop iterations, ...)
  int max_call_depth = 100;                    // nested macro / caller / recursive-loop calls
  // Time returned by strftime_now (seconds since the epoch, rendered in local time); unset means
  // the current time.
  std::optional<int64_t> now_unix_seconds;
};

// A parsed template; render() may be called any number of times, also concurrently.
class Template {
 public:
  // Throws ug::Error ("<name>: line L, column C: message") if the source does not parse.
  explicit Template(std::string_view source, Options options = {});
  ~Template();
  Template(const Template&);
  Template& operator=(const Template&);
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // `context` must be a JSON object; its members become template variables. With ordered_json
  // the key order of objects is kept (dict iteration and tojson follow it, as in Python); with
  // nlohmann::json objects arrive sorted by key. Throws ug::Error on any rendering failure,
  // including raise_exception(message), whose message is passed through.
  std::string render(const nlohmann::ordered_json& context) const;
  std::string render(const nlohmann::json& context) const;

  const Options& options() const { return options_; }

 private:
  std::shared_ptr<const Program> program_;
  Options options_;
};

// One-shot convenience: parse + render.
std::string render(std::string_view source, const nlohmann::ordered_json& context,
                   const Options& options = {});

}  // namespace ug::jinja
