#include "runtime/json_constraint.h"

#include <algorithm>
#include <map>

#include "util/error.h"

namespace ug {

namespace {

constexpr size_t kMaxDepth = 64;
// Outside strings; bounds how long a model can stall in whitespace.
constexpr int kMaxWhitespaceRun = 32;
// Live interpretations of the text (anyOf branches not yet told apart); more are dropped, which
// can only narrow what is accepted.
constexpr size_t kMaxPaths = 64;
constexpr int kMaxProperties = 64;
constexpr int kMaxExponentDigits = 2;

using Frame = JsonValidator::Frame;
using Path = JsonValidator::Path;
using Node = JsonSchema::Node;
using nlohmann::json;

// Object phases.
constexpr uint8_t kKeyOrEnd = 0, kKeyNext = 1, kColon = 2, kCommaOrEnd = 3;
// Array phases.
constexpr uint8_t kItemOrEnd = 0, kItemCommaOrEnd = 1;
// Number grammar states.
enum Num : uint8_t { kMinus, kZero, kInt, kDot, kFrac, kExp, kExpSign, kExpDigits };

const std::vector<std::string> kTrue = {"true"}, kFalse = {"false"}, kNullLit = {"null"};

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_escape_char(char c) {
  return c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
         c == 't' || c == 'u';
}
// UTF-8 inside strings: whether `u` may come next, and the state after it (`left` continuation
// bytes still expected, the range of the next one: excludes overlong forms, surrogates and code
// points beyond U+10FFFF, which JSON parsers reject).
bool utf8_step(Frame& f, unsigned char u) {
  if (f.utf8_left > 0) {
    if (u < f.utf8_lo || u > f.utf8_hi) return false;
    --f.utf8_left;
    f.utf8_lo = 0x80;
    f.utf8_hi = 0xBF;
    return true;
  }
  if (u < 0x80) return true;
  f.utf8_lo = 0x80;
  f.utf8_hi = 0xBF;
  if (u >= 0xC2 && u <= 0xDF) {
    f.utf8_left = 1;
  } else if (u >= 0xE0 && u <= 0xEF) {
    f.utf8_left = 2;
    if (u == 0xE0) f.utf8_lo = 0xA0;
    if (u == 0xED) f.utf8_hi = 0x9F;
  } else if (u >= 0xF0 && u <= 0xF4) {
    f.utf8_left = 3;
    if (u == 0xF0) f.utf8_lo = 0x90;
    if (u == 0xF4) f.utf8_hi = 0x8F;
  } else {
    return false;
  }
  return true;
}

bool number_terminal(uint8_t s) {
  return s == kZero || s == kInt || s == kFrac || s == kExpDigits;
}
bool starts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// ------------------------------------------------------------------ schema compiler

// Keywords that change which documents are valid and that the validator does not implement.
const char* const kUnsupported[] = {"pattern",
                                    "patternProperties",
                                    "minimum",
                                    "maximum",
                                    "exclusiveMinimum",
                                    "exclusiveMaximum",
                                    "multipleOf",
                                    "allOf",
                                    "oneOf",
                                    "not",
                                    "if",
                                    "then",
                                    "else",
                                    "dependentRequired",
                                    "dependentSchemas",
                                    "dependencies",
                                    "prefixItems",
                                    "additionalItems",
                                    "contains",
                                    "minContains",
                                    "maxContains",
                                    "minProperties",
                                    "maxProperties",
                                    "propertyNames",
                                    "unevaluatedProperties",
                                    "unevaluatedItems",
                                    "$dynamicRef",
                                    "$recursiveRef"};
// Keywords with a meaning for validity that the compiler reads.
const char* const kValidity[] = {"type",     "enum",      "const",     "properties",
                                 "required", "items",     "minItems",  "maxItems",
                                 "anyOf",    "minLength", "maxLength", "additionalProperties",
                                 "nullable"};

struct Compiler {
  const json& doc;
  bool strict;
  JsonSchema& out;
  std::vector<std::string> ref_stack;
  std::map<std::string, int> refs_done;
  int depth = 0;

  [[noreturn]] void fail(const std::string& what, const std::string& path) const {
    throw Error("schema: " + what + " at " + (path.empty() ? std::string("/") : path));
  }

  int nonneg(const json& s, const char* key, const std::string& path) const {
    const json& v = s[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > (1 << 30)) {
      fail(std::string("'") + key + "' must be a non-negative integer", path);
    }
    return int(v.get<int64_t>());
  }

  static uint8_t type_bit(const std::string& t) {
    if (t == "object") return JsonSchema::kObject;
    if (t == "array") return JsonSchema::kArray;
    if (t == "string") return JsonSchema::kString;
    if (t == "number") return JsonSchema::kNumber | JsonSchema::kInteger;
    if (t == "integer") return JsonSchema::kInteger;
    if (t == "boolean") return JsonSchema::kBoolean;
    if (t == "null") return JsonSchema::kNull;
    return 0;
  }

  static uint8_t type_of(const json& v) {
    if (v.is_object()) return JsonSchema::kObject;
    if (v.is_array()) return JsonSchema::kArray;
    if (v.is_string()) return JsonSchema::kString;
    if (v.is_number_integer() || v.is_number_unsigned()) return JsonSchema::kInteger;
    if (v.is_number()) return JsonSchema::kNumber;
    if (v.is_boolean()) return JsonSchema::kBoolean;
    return JsonSchema::kNull;
  }

  int compile_ref(const std::string& ref, const std::string& path) {
    if (ref != "#" && !starts_with(ref, "#/$defs/") && !starts_with(ref, "#/definitions/")) {
      fail("'$ref' must point into #/$defs or #/definitions, got '" + ref + "'", path);
    }
    if (std::find(ref_stack.begin(), ref_stack.end(), ref) != ref_stack.end()) {
      fail("recursive '$ref' " + ref + " is not supported", path);
    }
    if (auto it = refs_done.find(ref); it != refs_done.end()) return it->second;
    const json* target = nullptr;
    try {
      target = &doc.at(json::json_pointer(ref.substr(1)));
    } catch (const json::exception&) {
      fail("'$ref' " + ref + " does not resolve", path);
    }
    ref_stack.push_back(ref);
    const int id = compile(*target, ref.substr(1));
    ref_stack.pop_back();
    refs_done[ref] = id;
    return id;
  }

  int compile(const json& s, const std::string& path) {
    if (++depth > int(kMaxDepth)) fail("nested deeper than " + std::to_string(kMaxDepth), path);
    const int id = compile_node(s, path);
    --depth;
    return id;
  }

  int compile_node(const json& s, const std::string& path) {
    if (s.is_boolean()) {
      if (s.get<bool>()) return 0;
      fail("the schema 'false' accepts nothing", path);
    }
    if (!s.is_object()) fail("a schema must be an object or a boolean", path);
    for (const char* k : kUnsupported) {
      if (s.contains(k)) fail(std::string("'") + k + "' is not supported", path);
    }
    if (s.contains("uniqueItems") && s["uniqueItems"] == true) {
      fail("'uniqueItems' is not supported", path);
    }
    auto has_validity = [&] {
      for (const char* k : kValidity) {
        if (s.contains(k)) return true;
      }
      return false;
    };
    if (s.contains("$ref")) {
      if (!s["$ref"].is_string()) fail("'$ref' must be a string", path);
      if (has_validity()) fail("'$ref' next to other constraints is not supported", path);
      return compile_ref(s["$ref"].get<std::string>(), path);
    }
    const int id = int(out.nodes.size());
    out.nodes.emplace_back();
    Node n;
    if (s.contains("anyOf")) {
      const json& a = s["anyOf"];
      if (!a.is_array() || a.empty()) fail("'anyOf' must be a non-empty array", path);
      for (const char* k : kValidity) {
        if (std::string_view(k) != "anyOf" && s.contains(k)) {
          fail(std::string("'anyOf' next to '") + k + "' is not supported", path);
        }
      }
      for (size_t i = 0; i < a.size(); ++i) {
        n.any_of.push_back(compile(a[i], path + "/anyOf/" + std::to_string(i)));
      }
      out.nodes[size_t(id)] = std::move(n);
      return id;
    }
    if (s.contains("type")) {
      const json& t = s["type"];
      n.types = 0;
      auto add = [&](const json& name) {
        const uint8_t bit = name.is_string() ? type_bit(name.get<std::string>()) : 0;
        if (!bit) fail("unknown 'type' " + name.dump(), path);
        n.types |= bit;
      };
      if (t.is_array()) {
        if (t.empty()) fail("'type' must not be an empty list", path);
        for (const auto& x : t) add(x);
      } else {
        add(t);
      }
    } else if (s.contains("properties") || s.contains("required") ||
               s.contains("additionalProperties")) {
      n.types = JsonSchema::kObject;
    } else if (s.contains("items") || s.contains("minItems") || s.contains("maxItems")) {
      n.types = JsonSchema::kArray;
    } else if (s.contains("minLength") || s.contains("maxLength")) {
      n.types = JsonSchema::kString;
    }
    if (s.contains("nullable") && s["nullable"] == true) n.types |= JsonSchema::kNull;

    if (s.contains("enum") || s.contains("const")) {
      if (s.contains("enum") && s.contains("const")) fail("both 'enum' and 'const'", path);
      json values = s.contains("const") ? json::array({s["const"]}) : s["enum"];
      if (!values.is_array() || values.empty()) fail("'enum' must be a non-empty array", path);
      n.has_literals = true;
      for (const auto& v : values) {
        const uint8_t t = type_of(v);
        if ((n.types & t) || (t == JsonSchema::kInteger && (n.types & JsonSchema::kNumber))) {
          n.literals.push_back(v.dump(-1, ' ', false, json::error_handler_t::replace));
        }
      }
      if (n.literals.empty()) fail("no 'enum'/'const' value has the schema's type", path);
    }

    if (s.contains("properties")) {
      const json& props = s["properties"];
      if (!props.is_object()) fail("'properties' must be an object", path);
      if (int(props.size()) > kMaxProperties) {
        fail("more than " + std::to_string(kMaxProperties) + " properties", path);
      }
      for (const auto& [name, sub] : props.items()) {
        const std::string quoted = json(name).dump(-1, ' ', false, json::error_handler_t::replace);
        n.keys.push_back(quoted.substr(1, quoted.size() - 2));
        n.key_nodes.push_back(compile(sub, path + "/properties/" + name));
        n.key_required.push_back(strict);
      }
    }
    if (s.contains("additionalProperties") && !strict) {
      const json& ap = s["additionalProperties"];
      if (ap.is_boolean()) {
        n.additional = ap.get<bool>();
      } else {
        n.additional_node = compile(ap, path + "/additionalProperties");
      }
    }
    if (strict) n.additional = false;
    if (s.contains("required")) {
      const json& req = s["required"];
      if (!req.is_array()) fail("'required' must be an array of names", path);
      for (const auto& r : req) {
        if (!r.is_string()) fail("'required' must be an array of names", path);
        const std::string quoted = r.dump(-1, ' ', false, json::error_handler_t::replace);
        const std::string key = quoted.substr(1, quoted.size() - 2);
        auto it = std::find(n.keys.begin(), n.keys.end(), key);
        if (it == n.keys.end()) {
          if (!n.additional) {
            fail("required property '" + r.get<std::string>() + "' is not allowed", path);
          }
          if (int(n.keys.size()) >= kMaxProperties) {
            fail("more than " + std::to_string(kMaxProperties) + " properties", path);
          }
          n.keys.push_back(key);
          n.key_nodes.push_back(n.additional_node);
          n.key_required.push_back(true);
        } else {
          n.key_required[size_t(it - n.keys.begin())] = true;
        }
      }
    }
    n.n_required = int(std::count(n.key_required.begin(), n.key_required.end(), true));

    if (s.contains("items")) {
      if (s["items"].is_array()) fail("'items' as a list (tuples) is not supported", path);
      n.items = compile(s["items"], path + "/items");
    }
    if (s.contains("minItems")) n.min_items = nonneg(s, "minItems", path);
    if (s.contains("maxItems")) n.max_items = nonneg(s, "maxItems", path);
    if (n.max_items >= 0 && n.min_items > n.max_items) fail("'minItems' > 'maxItems'", path);
    if (s.contains("minLength")) n.min_length = nonneg(s, "minLength", path);
    if (s.contains("maxLength")) n.max_length = nonneg(s, "maxLength", path);
    if (n.max_length >= 0 && n.min_length > n.max_length) fail("'minLength' > 'maxLength'", path);
    out.nodes[size_t(id)] = std::move(n);
    return id;
  }
};

}  // namespace

std::shared_ptr<const JsonSchema> JsonSchema::compile(const nlohmann::json& schema, bool strict) {
  auto s = std::make_shared<JsonSchema>();
  s->nodes.emplace_back();  // 0: any value
  Compiler c{schema, strict, *s, {}, {}, 0};
  s->root = c.compile(schema, "");
  return s;
}

std::shared_ptr<const JsonSchema> JsonSchema::of_top(JsonTop top) {
  auto s = std::make_shared<JsonSchema>();
  s->nodes.emplace_back();
  if (top != JsonTop::kAny) {
    Node n;
    n.types = top == JsonTop::kObject ? kObject : kArray;
    s->nodes.push_back(n);
    s->root = 1;
  }
  return s;
}

// ------------------------------------------------------------------ validator

JsonValidator::JsonValidator(JsonTop top) : JsonValidator(JsonSchema::of_top(top)) {}

JsonValidator::JsonValidator(std::shared_ptr<const JsonSchema> schema)
    : schema_(std::move(schema)) {
  Path p;
  Frame f;
  f.node = schema_->root;
  p.stack.push_back(f);
  expand(std::move(p), paths_, 0);
}

void JsonValidator::expand(Path p, std::vector<Path>& out, int depth) const {
  const Frame& top = p.stack.back();
  const Node& n = schema_->nodes[size_t(top.node)];
  if (out.size() >= kMaxPaths) return;
  if (top.kind != Frame::kValue || n.any_of.empty() || depth > 16) {
    out.push_back(std::move(p));
    return;
  }
  for (int b : n.any_of) {
    Path q = p;
    q.stack.back().node = b;
    expand(std::move(q), out, depth + 1);
  }
}

bool JsonValidator::complete() const {
  return std::any_of(paths_.begin(), paths_.end(), [](const Path& p) { return p.done; });
}

bool JsonValidator::can_end() const {
  for (const Path& p : paths_) {
    if (p.done) return true;
    if (p.stack.size() != 1) continue;
    const Frame& f = p.stack.back();
    if (f.kind == Frame::kNumber && number_terminal(f.phase)) return true;
    if (f.kind == Frame::kLiteral &&
        std::find(f.literals->begin(), f.literals->end(), f.buf) != f.literals->end()) {
      return true;
    }
  }
  return false;
}

bool JsonValidator::accepts(std::string_view text) const {
  JsonValidator copy = *this;
  return copy.feed(text);
}

bool JsonValidator::feed(std::string_view text) {
  std::vector<Path> saved = paths_;
  for (char ch : text) {
    if (!step_all(ch)) {
      paths_ = std::move(saved);
      return false;
    }
  }
  return true;
}

bool JsonValidator::step_all(char ch) {
  std::vector<Path> next;
  for (const Path& p : paths_) {
    step(p, ch, next);
    if (next.size() > kMaxPaths) next.resize(kMaxPaths);
  }
  if (next.empty()) return false;
  paths_ = std::move(next);
  return true;
}

bool JsonValidator::another_key_possible(const Frame& obj) const {
  const Node& n = schema_->nodes[size_t(obj.node)];
  if (n.additional) return true;
  for (size_t i = 0; i < n.keys.size(); ++i) {
    if (!(obj.seen >> i & 1)) return true;
  }
  return false;
}

namespace {
bool required_seen(const Node& n, uint64_t seen) {
  for (size_t i = 0; i < n.keys.size(); ++i) {
    if (n.key_required[i] && !(seen >> i & 1)) return false;
  }
  return true;
}
}  // namespace

// The top frame's value ended. `ch`, when `reprocess`, is the byte that ended it (a number's
// terminator) and still has to be read by the enclosing container.
void JsonValidator::end_value(Path p, char ch, bool reprocess, std::vector<Path>& out) const {
  p.stack.pop_back();
  if (p.stack.empty()) {
    p.done = true;
    if (!reprocess) out.push_back(std::move(p));
    return;
  }
  Frame& parent = p.stack.back();
  if (parent.kind == Frame::kObject) {
    parent.phase = kCommaOrEnd;
  } else {
    ++parent.count;
    parent.phase = kItemCommaOrEnd;
  }
  if (reprocess) {
    step(p, ch, out);
  } else {
    out.push_back(std::move(p));
  }
}

void JsonValidator::push_value(Path p, int node, std::vector<Path>& out) const {
  Frame v;
  v.node = node;
  p.stack.push_back(v);
  expand(std::move(p), out, 0);
}

void JsonValidator::step(Path p, char ch, std::vector<Path>& out) const {
  if (p.done || p.stack.empty()) return;
  const auto u = static_cast<unsigned char>(ch);
  Frame& f = p.stack.back();
  const Node& n = schema_->nodes[size_t(f.node)];
  auto whitespace = [&] {
    if (++p.whitespace_run <= kMaxWhitespaceRun) out.push_back(std::move(p));
  };
  switch (f.kind) {
    case Frame::kValue: {
      if (is_space(ch)) {
        if (p.stack.size() == 1 && top_first_) return;  // the document starts with its value
        return whitespace();
      }
      p.whitespace_run = 0;
      if (n.has_literals) {
        const std::string first(1, ch);
        if (std::none_of(n.literals.begin(), n.literals.end(),
                         [&](const std::string& l) { return starts_with(l, first); })) {
          return;
        }
        f.kind = Frame::kLiteral;
        f.literals = &n.literals;
        f.buf.clear();
        // Re-read the byte as the literal's first.
        return step(std::move(p), ch, out);
      }
      switch (ch) {
        case '{':
          if (!(n.types & JsonSchema::kObject) || p.stack.size() > kMaxDepth) return;
          f.kind = Frame::kObject;
          f.phase = kKeyOrEnd;
          f.seen = 0;
          break;
        case '[':
          if (!(n.types & JsonSchema::kArray) || p.stack.size() > kMaxDepth) return;
          f.kind = Frame::kArray;
          f.phase = kItemOrEnd;
          f.count = 0;
          break;
        case '"':
          if (!(n.types & JsonSchema::kString)) return;
          f.kind = Frame::kString;
          f.escape = 0;
          f.count = 0;
          break;
        case 't':
        case 'f':
          if (!(n.types & JsonSchema::kBoolean)) return;
          f.kind = Frame::kLiteral;
          f.literals = ch == 't' ? &kTrue : &kFalse;
          f.buf = ch;
          break;
        case 'n':
          if (!(n.types & JsonSchema::kNull)) return;
          f.kind = Frame::kLiteral;
          f.literals = &kNullLit;
          f.buf = ch;
          break;
        default:
          if (ch != '-' && !is_digit(ch)) return;
          if (!(n.types & (JsonSchema::kNumber | JsonSchema::kInteger))) return;
          f.kind = Frame::kNumber;
          f.integer = !(n.types & JsonSchema::kNumber);
          f.phase = ch == '-' ? kMinus : ch == '0' ? kZero : kInt;
          break;
      }
      out.push_back(std::move(p));
      return;
    }

    case Frame::kObject:
      if (is_space(ch)) return whitespace();
      p.whitespace_run = 0;
      switch (f.phase) {
        case kKeyOrEnd:
        case kCommaOrEnd:
          if (ch == '}') {
            if (required_seen(n, f.seen)) end_value(std::move(p), ch, false, out);
            return;
          }
          if (f.phase == kCommaOrEnd) {
            if (ch != ',' || !another_key_possible(f)) return;
            f.phase = kKeyNext;
            out.push_back(std::move(p));
            return;
          }
          [[fallthrough]];
        case kKeyNext: {
          if (ch != '"' || !another_key_possible(f)) return;
          Frame k;
          k.kind = Frame::kKey;
          k.node = f.node;
          p.stack.push_back(k);
          out.push_back(std::move(p));
          return;
        }
        case kColon: {
          if (ch != ':') return;
          const int value_node = f.key >= 0 ? n.key_nodes[size_t(f.key)] : n.additional_node;
          f.phase = kCommaOrEnd;  // once the value has been read
          return push_value(std::move(p), value_node, out);
        }
      }
      return;

    case Frame::kKey: {
      Frame& obj = p.stack[p.stack.size() - 2];
      if (f.escape == 1) {
        if (!is_escape_char(ch)) return;
        f.escape = ch == 'u' ? 2 : 0;
      } else if (f.escape >= 2) {
        if (!is_hex(ch)) return;
        f.escape = f.escape == 5 ? 0 : uint8_t(f.escape + 1);
      } else if (f.utf8_left > 0 || u >= 0x80) {
        if (!utf8_step(f, u)) return;
      } else if (ch == '"') {
        int idx = -1;
        for (size_t i = 0; i < n.keys.size(); ++i) {
          if (n.keys[i] == f.buf) idx = int(i);
        }
        if (idx >= 0 && (obj.seen >> idx & 1)) return;  // a duplicate key
        if (idx < 0 && !n.additional) return;
        obj.key = idx;
        if (idx >= 0) obj.seen |= uint64_t(1) << idx;
        obj.phase = kColon;
        p.stack.pop_back();
        out.push_back(std::move(p));
        return;
      } else if (ch == '\\') {
        f.escape = 1;
      } else if (u < 0x20) {
        return;
      }
      f.buf += ch;
      if (!n.additional) {
        bool prefix = false;
        for (size_t i = 0; i < n.keys.size() && !prefix; ++i) {
          prefix = !(obj.seen >> i & 1) && starts_with(n.keys[i], f.buf);
        }
        if (!prefix) return;
      }
      out.push_back(std::move(p));
      return;
    }

    case Frame::kArray:
      if (is_space(ch)) return whitespace();
      p.whitespace_run = 0;
      if (ch == ']') {
        if (f.count >= n.min_items) end_value(std::move(p), ch, false, out);
        return;
      }
      if (f.phase == kItemCommaOrEnd) {
        if (ch != ',' || (n.max_items >= 0 && f.count >= n.max_items)) return;
        return push_value(std::move(p), n.items, out);
      }
      // The first item starts with this byte.
      if (n.max_items == 0) return;
      {
        std::vector<Path> items;
        push_value(std::move(p), n.items, items);
        for (Path& q : items) step(std::move(q), ch, out);
      }
      return;

    case Frame::kString:
      if (f.escape == 1) {
        if (!is_escape_char(ch)) return;
        f.escape = ch == 'u' ? 2 : 0;
      } else if (f.escape >= 2) {
        if (!is_hex(ch)) return;
        f.escape = f.escape == 5 ? 0 : uint8_t(f.escape + 1);
      } else if (f.utf8_left > 0) {
        if (!utf8_step(f, u)) return;
      } else if (ch == '"') {
        if (f.count < n.min_length) return;
        return end_value(std::move(p), ch, false, out);
      } else if (u < 0x20) {
        return;
      } else {  // a new character
        if (!utf8_step(f, u)) return;
        if (n.max_length >= 0 && f.count >= n.max_length) return;
        ++f.count;
        if (ch == '\\') f.escape = 1;
      }
      out.push_back(std::move(p));
      return;

    case Frame::kNumber: {
      uint8_t& s = f.phase;
      bool ok = false;
      switch (s) {
        case kMinus:
          if (is_digit(ch)) {
            s = ch == '0' ? kZero : kInt;
            ok = true;
          }
          break;
        case kZero:
        case kInt:
          if (is_digit(ch) && s == kInt) {
            ok = true;
          } else if (ch == '.' && !f.integer) {
            s = kDot;
            ok = true;
          } else if ((ch == 'e' || ch == 'E') && !f.integer) {
            s = kExp;
            ok = true;
          }
          break;
        case kDot:
          if (is_digit(ch)) {
            s = kFrac;
            ok = true;
          }
          break;
        case kFrac:
          if (is_digit(ch)) {
            ok = true;
          } else if (ch == 'e' || ch == 'E') {
            s = kExp;
            ok = true;
          }
          break;
        case kExp:
          if (ch == '+' || ch == '-') {
            s = kExpSign;
            ok = true;
            break;
          }
          [[fallthrough]];
        case kExpSign:
          if (is_digit(ch)) {
            s = kExpDigits;
            f.count = 1;
            ok = true;
          }
          break;
        case kExpDigits:
          // At most two exponent digits: 1e999 overflows a double, and parsers reject it.
          ok = is_digit(ch) && ++f.count <= kMaxExponentDigits;
          break;
      }
      if (ok) {
        out.push_back(std::move(p));
      } else if (number_terminal(s)) {
        end_value(std::move(p), ch, true, out);  // the byte belongs to the container
      }
      return;
    }

    case Frame::kLiteral: {
      const std::string next = f.buf + ch;
      bool extends = false, longer = false;
      for (const std::string& l : *f.literals) {
        if (starts_with(l, next)) {
          extends = true;
          longer = longer || l.size() > next.size();
        }
      }
      if (extends) {
        f.buf = next;
        if (!longer) return end_value(std::move(p), ch, false, out);
        out.push_back(std::move(p));
        return;
      }
      // A literal that could have gone on (a number in an enum) ends at this byte.
      if (std::find(f.literals->begin(), f.literals->end(), f.buf) != f.literals->end()) {
        end_value(std::move(p), ch, true, out);
      }
      return;
    }
  }
}

// ------------------------------------------------------------------ completion

std::string JsonValidator::minimal(int node, int depth) const {
  const Node& n = schema_->nodes[size_t(node)];
  auto shortest = [](std::vector<std::string> c) {
    std::string best;
    bool have = false;
    for (auto& s : c) {
      if (!have || s.size() < best.size()) {
        best = std::move(s);
        have = true;
      }
    }
    return best;
  };
  if (depth > 32) return "null";
  if (n.has_literals) return shortest(n.literals);
  if (!n.any_of.empty()) {
    std::vector<std::string> c;
    for (int b : n.any_of) c.push_back(minimal(b, depth + 1));
    return shortest(std::move(c));
  }
  std::vector<std::string> c;
  if (n.types & (JsonSchema::kNumber | JsonSchema::kInteger)) c.push_back("0");
  if (n.types & JsonSchema::kNull) c.push_back("null");
  if (n.types & JsonSchema::kBoolean) c.push_back("true");
  if (n.types & JsonSchema::kString) {
    std::string s(size_t(n.min_length) + 2, 'a');
    s.front() = s.back() = '"';
    c.push_back(s);
  }
  if (n.types & JsonSchema::kArray) {
    std::string s = "[";
    for (int i = 0; i < n.min_items; ++i) {
      if (i) s += ',';
      s += minimal(n.items, depth + 1);
    }
    c.push_back(s + "]");
  }
  if (n.types & JsonSchema::kObject) {
    std::string s = "{";
    bool comma = false;
    for (size_t i = 0; i < n.keys.size(); ++i) {
      if (!n.key_required[i]) continue;
      s += comma ? ",\"" : "\"";
      s += n.keys[i];
      s += "\":";
      s += minimal(n.key_nodes[i], depth + 1);
      comma = true;
    }
    c.push_back(s + "}");
  }
  return shortest(std::move(c));
}

std::string JsonValidator::completion(const Path& path) const {
  Path p = path;
  std::string out;
  // The top frame ended: tell its container, as end_value does.
  auto close = [&] {
    p.stack.pop_back();
    if (p.stack.empty()) return;
    Frame& parent = p.stack.back();
    if (parent.kind == Frame::kObject) {
      parent.phase = kCommaOrEnd;
    } else {
      ++parent.count;
      parent.phase = kItemCommaOrEnd;
    }
  };
  while (!p.stack.empty()) {
    Frame& f = p.stack.back();
    const Node& n = schema_->nodes[size_t(f.node)];
    switch (f.kind) {
      case Frame::kValue:
        out += minimal(f.node);
        close();
        break;
      case Frame::kString:
        for (; f.utf8_left > 0; --f.utf8_left, f.utf8_lo = 0x80) out += char(f.utf8_lo);
        if (f.escape == 1) out += 'n';
        if (f.escape >= 2) out.append(size_t(6 - f.escape), '0');
        if (f.count < n.min_length) out.append(size_t(n.min_length - f.count), 'a');
        out += '"';
        close();
        break;
      case Frame::kNumber:
        if (!number_terminal(f.phase)) out += '0';
        close();
        break;
      case Frame::kLiteral: {
        const std::string* best = nullptr;
        for (const std::string& l : *f.literals) {
          if (starts_with(l, f.buf) && (!best || l.size() < best->size())) best = &l;
        }
        if (best) out += best->substr(f.buf.size());
        close();
        break;
      }
      case Frame::kKey: {
        Frame& obj = p.stack[p.stack.size() - 2];
        for (; f.utf8_left > 0; --f.utf8_left, f.utf8_lo = 0x80) {
          f.buf += char(f.utf8_lo);
          out += char(f.utf8_lo);
        }
        if (f.escape == 1) f.buf += 'n', out += 'n', f.escape = 0;
        while (f.escape >= 2) f.buf += '0', out += '0', f.escape = f.escape == 5 ? 0 : f.escape + 1;
        int idx = -1;
        // Prefer a required key, then any unseen one, that continues what was written.
        for (int pass = 0; pass < 2 && idx < 0; ++pass) {
          for (size_t i = 0; i < n.keys.size() && idx < 0; ++i) {
            if ((obj.seen >> i & 1) || !starts_with(n.keys[i], f.buf)) continue;
            if (pass == 0 && !n.key_required[i]) continue;
            if (n.additional && n.keys[i] != f.buf) continue;  // free keys end where they are
            idx = int(i);
          }
        }
        if (idx >= 0) out += n.keys[size_t(idx)].substr(f.buf.size());
        out += '"';
        obj.key = idx;
        if (idx >= 0) obj.seen |= uint64_t(1) << idx;
        obj.phase = kColon;
        p.stack.pop_back();
        break;
      }
      case Frame::kObject: {
        auto value_of = [&](int key) {
          return key >= 0 ? n.key_nodes[size_t(key)] : n.additional_node;
        };
        if (f.phase == kColon) {
          out += ':';
          out += minimal(value_of(f.key));
          f.phase = kCommaOrEnd;
        } else if (f.phase == kKeyNext) {
          int idx = -1;
          for (size_t i = 0; i < n.keys.size() && idx < 0; ++i) {
            if (!(f.seen >> i & 1) && n.key_required[i]) idx = int(i);
          }
          for (size_t i = 0; i < n.keys.size() && idx < 0; ++i) {
            if (!(f.seen >> i & 1)) idx = int(i);
          }
          out += '"';
          if (idx >= 0) out += n.keys[size_t(idx)];
          out += "\":";
          out += minimal(value_of(idx));
          if (idx >= 0) f.seen |= uint64_t(1) << idx;
          f.phase = kCommaOrEnd;
        }
        bool comma = f.phase == kCommaOrEnd;
        for (size_t i = 0; i < n.keys.size(); ++i) {
          if (!n.key_required[i] || (f.seen >> i & 1)) continue;
          out += comma ? ",\"" : "\"";
          out += n.keys[i];
          out += "\":";
          out += minimal(n.key_nodes[i]);
          comma = true;
        }
        out += '}';
        close();
        break;
      }
      case Frame::kArray:
        for (int i = f.count; i < n.min_items; ++i) {
          if (i > 0) out += ',';
          out += minimal(n.items);
        }
        out += ']';
        close();
        break;
    }
  }
  return out;
}

std::string JsonValidator::shortest_completion() const {
  std::string best;
  bool have = false;
  for (const Path& p : paths_) {
    if (p.done) return {};
    std::string c = completion(p);
    if (!have || c.size() < best.size()) {
      best = std::move(c);
      have = true;
    }
  }
  return best;
}

}  // namespace ug
