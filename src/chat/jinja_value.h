// Runtime values of the Jinja interpreter, modelled on the Python objects that jinja2 templates
// see: None/bool/int/float/str, lists, tuples, insertion-ordered dicts, namespaces, callables, and
// jinja2's default Undefined. Printing, equality, ordering and JSON dumping follow Python so that
// renderings are byte-identical to Hugging Face's jinja2 environment.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace ug::jinja {

// Error raised while lexing, parsing or rendering. Carries the template position once known; the
// public entry points turn it into ug::Error with "<name>: line L, column C: message".
class Fault : public std::exception {
 public:
  explicit Fault(std::string message, int line = 0, int column = 0)
      : message_(std::move(message)), line_(line), column_(column) {}
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const { return message_; }
  int line() const { return line_; }
  int column() const { return column_; }
  bool located() const { return line_ > 0; }
  void locate(int line, int column) {
    line_ = line;
    column_ = column;
  }

 private:
  std::string message_;
  int line_;
  int column_;
};

enum class Kind : uint8_t {
  kUndefined,
  kNone,
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kTuple,
  kDict,
  kNamespace,
  kCallable,
  kLoop,
};

struct Value;
struct ListData;
struct DictData;
struct Callable;
struct LoopState;

using StrPtr = std::shared_ptr<const std::string>;
using ListPtr = std::shared_ptr<ListData>;
using DictPtr = std::shared_ptr<DictData>;
using CallablePtr = std::shared_ptr<const Callable>;
using LoopPtr = std::shared_ptr<LoopState>;

struct Value {
  Kind kind = Kind::kUndefined;
  // kUndefined keeps the message to raise when it is used in a way jinja2 forbids (may be null).
  std::variant<std::monostate, bool, int64_t, double, StrPtr, ListPtr, DictPtr, CallablePtr,
               LoopPtr>
      data;

  static Value undefined(std::string hint = {});
  static Value none() { return Value{Kind::kNone, {}}; }
  static Value boolean(bool b) { return Value{Kind::kBool, b}; }
  static Value integer(int64_t i) { return Value{Kind::kInt, i}; }
  static Value number(double d) { return Value{Kind::kFloat, d}; }
  static Value string(std::string s);
  static Value string(StrPtr s) { return Value{Kind::kString, std::move(s)}; }
  static Value list(std::vector<Value> items = {});
  static Value tuple(std::vector<Value> items = {});
  static Value dict();
  static Value namespace_object();
  static Value callable(CallablePtr fn) { return Value{Kind::kCallable, std::move(fn)}; }
  static Value loop(LoopPtr state) { return Value{Kind::kLoop, std::move(state)}; }

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  // Python int (bool included, as in Python arithmetic) or float.
  bool is_number() const {
    return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool;
  }
  bool is_sequence_like() const { return kind == Kind::kList || kind == Kind::kTuple; }
  bool is_mapping() const { return kind == Kind::kDict; }

  bool as_bool() const { return std::get<bool>(data); }
  int64_t as_int() const { return std::get<int64_t>(data); }
  double as_float() const { return std::get<double>(data); }
  const std::string& str() const { return *std::get<StrPtr>(data); }
  const StrPtr& str_ptr() const { return std::get<StrPtr>(data); }
  ListData& items() const { return *std::get<ListPtr>(data); }
  const ListPtr& list_ptr() const { return std::get<ListPtr>(data); }
  DictData& entries() const { return *std::get<DictPtr>(data); }
  const DictPtr& dict_ptr() const { return std::get<DictPtr>(data); }
  const Callable& fn() const { return *std::get<CallablePtr>(data); }
  LoopState& loop_state() const { return *std::get<LoopPtr>(data); }
  // Message for a misused Undefined ("'x' is undefined").
  std::string undefined_message() const;
};

// Containers free their children iteratively, so deeply nested values cannot overflow the stack.
struct ListData {
  std::vector<Value> values;
  ListData() = default;
  explicit ListData(std::vector<Value> v) : values(std::move(v)) {}
  ListData(const ListData&) = delete;
  ListData& operator=(const ListData&) = delete;
  ~ListData();
};

// Insertion-ordered mapping (Python dict), also the attribute store of namespace().
struct DictData {
  std::vector<std::pair<Value, Value>> items;

  DictData() = default;
  DictData(const DictData&) = delete;
  DictData& operator=(const DictData&) = delete;
  ~DictData();

  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
  // Appends without a duplicate check: only for keys known to be new (JSON objects).
  void append_unique(Value key, Value value);
  bool erase(const Value& key);
  void clear();
  size_t size() const { return items.size(); }

 private:
  // Built lazily for larger dicts; maps string keys to positions in `items`.
  mutable std::unordered_map<std::string, size_t> index_;
  mutable bool index_valid_ = false;
  void invalidate() { index_valid_ = false; }
  const Value* find_indexed(std::string_view key) const;
};

// --- Python semantics --------------------------------------------------------------------------

bool truthy(const Value& v);
// Python str(): strings as-is, numbers/None/bools/containers like Python, Undefined as "".
std::string to_str(const Value& v);
void append_str(std::string& out, const Value& v);
// Python repr().
void append_repr(std::string& out, const Value& v);
std::string repr(const Value& v);
// Python float repr (shortest round-trip digits; "1.0", "1e-05", "1e+16", "inf", "nan").
std::string float_repr(double d);
// Python type names for messages ("str", "int", "dict", "NoneType", ...).
std::string type_name(const Value& v);
// jinja2 object_type_repr: "dict object", "None", ...
std::string object_description(const Value& v);

bool values_equal(const Value& a, const Value& b);
// Python ordering (<): numbers, strings, lists/tuples lexicographically; anything else throws.
bool value_less(const Value& a, const Value& b);
// Throws for Undefined when it is "used" (jinja2 raises UndefinedError).
[[noreturn]] void fail_undefined(const Value& v);

// Numeric view of bool/int for arithmetic.
bool as_integer(const Value& v, int64_t* out);
double as_double(const Value& v);

// --- Unicode helpers (Python strings are code-point sequences; ours are UTF-8) -----------------

bool is_ascii(std::string_view s);
// Byte offsets of every code point start plus the end offset (size = length + 1).
std::vector<size_t> utf8_offsets(std::string_view s);
size_t utf8_length(std::string_view s);
// Decodes one code point at `pos` (invalid bytes are taken as single code points).
uint32_t utf8_decode(std::string_view s, size_t pos, size_t* next);
void utf8_append(std::string& out, uint32_t cp);
// Python str.isspace() for one code point.
bool is_python_space(uint32_t cp);
// Python str.upper()/lower() for the scripts chat text commonly uses (Latin incl. Vietnamese,
// Greek, Cyrillic, Armenian, Georgian, fullwidth forms); other characters are left unchanged.
uint32_t simple_upper(uint32_t cp);
uint32_t simple_lower(uint32_t cp);
void append_upper(std::string& out, uint32_t cp);  // ß -> "SS" like Python
void append_lower(std::string& out, uint32_t cp);  // İ -> "i̇" like Python
void append_title(std::string& out, uint32_t cp);  // title case (str.title / capitalize)
bool is_cased(uint32_t cp);

// --- JSON --------------------------------------------------------------------------------------

// Conversion of template inputs. Object key order is kept for ordered_json (as Python's json
// does); nlohmann::json has already sorted its keys.
Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);

struct JsonStyle {
  bool has_indent = false;
  std::string indent;  // per level, used when has_indent
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};
// Python json.dumps(value, ...) as Hugging Face's tojson filter calls it.
void append_json(std::string& out, const Value& v, const JsonStyle& style);

}  // namespace ug::jinja
