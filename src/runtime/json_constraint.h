// Incremental JSON validator for constrained decoding (response_format json_object/json_schema,
// Ollama `format`): fed the generated text byte by byte, it says whether the text so far can still
// be continued into one complete JSON document that satisfies the schema (or just the required
// top-level type), and when the document is complete. The scheduler asks it, for each candidate
// token, whether the token's text keeps the prefix valid, and masks the tokens that do not.
//
// Schemas are compiled from the common JSON Schema subset: type (one or a list), enum, const,
// properties, required, additionalProperties (bool or schema), items, minItems, maxItems,
// minLength, maxLength, anyOf, nullable, $ref into #/$defs or #/definitions (not recursive).
// Annotations (title, description, format, default, examples...) and unknown keywords are ignored;
// keywords that would change validity but are not implemented (pattern, minimum, oneOf, allOf...)
// are refused with an error naming them, so that no output is ever claimed valid that is not.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace ug {

enum class JsonTop { kAny, kObject, kArray };

struct JsonSchema {
  enum Type : uint8_t {
    kObject = 1,
    kArray = 2,
    kString = 4,
    kNumber = 8,  // includes integers
    kInteger = 16,
    kBoolean = 32,
    kNull = 64,
    kAnyType = 127,
  };
  struct Node {
    uint8_t types = kAnyType;
    bool has_literals = false;
    std::vector<std::string> literals;  // enum/const: the allowed values as compact JSON text
    std::vector<int> any_of;            // non-empty: a value of one of these nodes, nothing else
    // Objects. Keys as they appear between the quotes in JSON text (escaped).
    std::vector<std::string> keys;
    std::vector<int> key_nodes;
    std::vector<bool> key_required;
    int n_required = 0;
    bool additional = true;
    int additional_node = 0;
    // Arrays.
    int items = 0;
    int min_items = 0;
    int max_items = -1;  // -1: unbounded
    // Strings (code points).
    int min_length = 0;
    int max_length = -1;
  };
  std::vector<Node> nodes;  // nodes[0]: any value
  int root = 0;

  // Throws ug::Error naming the keyword and where it is ("schema: 'pattern' at
  // /properties/name is not supported"). `strict` (OpenAI): objects allow only their listed
  // properties, and all of them are required.
  static std::shared_ptr<const JsonSchema> compile(const nlohmann::json& schema,
                                                   bool strict = false);
  // Any document with this top-level type.
  static std::shared_ptr<const JsonSchema> of_top(JsonTop top);
};

class JsonValidator {
 public:
  explicit JsonValidator(JsonTop top = JsonTop::kObject);
  explicit JsonValidator(std::shared_ptr<const JsonSchema> schema);

  // Feeds `text`; false (state unchanged) when any byte would make the prefix invalid.
  bool feed(std::string_view text);
  // Whether feed(text) would succeed, without changing the state.
  bool accepts(std::string_view text) const;
  // A whole document has been read (only the end of generation may follow).
  bool complete() const;
  // The document could end here, though more could follow (a top-level number: "12" or "123").
  bool can_end() const;
  // The shortest text that completes the document from here ("\"}]" ...) while satisfying the
  // schema (required keys, minItems...); lets a generation that is running out of tokens close
  // what it opened.
  std::string shortest_completion() const;

  struct Frame {
    enum Kind : uint8_t { kValue, kObject, kArray, kString, kKey, kNumber, kLiteral };
    Kind kind = kValue;
    uint8_t phase = 0;      // objects/arrays: what comes next; numbers: grammar state
    uint8_t escape = 0;     // strings: 1 after a backslash; 2..5 hex digits of \u still expected
    uint8_t utf8_left = 0;  // strings: continuation bytes still expected, in [utf8_lo, utf8_hi]
    uint8_t utf8_lo = 0x80, utf8_hi = 0xBF;
    bool integer = false;
    int node = 0;
    int count = 0;      // array items, string code points
    int key = -1;       // object: the property whose value is being read (-1: an extra key)
    uint64_t seen = 0;  // object: properties present so far (bit i: keys[i])
    std::string buf;    // key and literal text read so far
    const std::vector<std::string>* literals = nullptr;
  };
  struct Path {
    std::vector<Frame> stack;
    int whitespace_run = 0;
    bool done = false;
  };

 private:
  bool step_all(char ch);
  // Reads one byte on path `p`; appends the paths that survive it to `out` (none: rejected).
  void step(Path p, char ch, std::vector<Path>& out) const;
  void end_value(Path p, char ch, bool reprocess, std::vector<Path>& out) const;
  void push_value(Path p, int node, std::vector<Path>& out) const;
  void expand(Path p, std::vector<Path>& out, int depth) const;
  std::string minimal(int node, int depth = 0) const;
  std::string completion(const Path& p) const;
  bool another_key_possible(const Frame& obj) const;

  std::shared_ptr<const JsonSchema> schema_;
  bool top_first_ = true;  // the document starts with its value (no leading whitespace)
  std::vector<Path> paths_;
};

}  // namespace ug
