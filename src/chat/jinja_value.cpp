#include "chat/jinja_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace ug::jinja {
namespace {

// Deeper nesting than this in data being printed, compared or converted is refused: real chat
// data is shallow, and the limit keeps recursion far from the native stack size.
constexpr int kMaxNesting = 512;

// Values whose destruction was deferred by a container destructor already running on this
// thread; see release_children().
thread_local std::vector<Value>* t_graveyard = nullptr;

bool holds_container(const Value& v) {
  return std::holds_alternative<ListPtr>(v.data) || std::holds_alternative<DictPtr>(v.data) ||
         std::holds_alternative<LoopPtr>(v.data);
}

// Frees nested containers with an explicit work list instead of recursion: the outermost
// container destructor drains the list, inner ones only push their children onto it.
template <class MoveChildren>
void release_children(MoveChildren move_children) {
  if (t_graveyard != nullptr) {
    move_children(*t_graveyard);
    return;
  }
  std::vector<Value> graveyard;
  t_graveyard = &graveyard;
  move_children(graveyard);
  while (!graveyard.empty()) {
    Value doomed = std::move(graveyard.back());
    graveyard.pop_back();
  }
  t_graveyard = nullptr;
}

void check_depth(int depth) {
  if (depth > kMaxNesting) {
    throw Fault("value nested more than " + std::to_string(kMaxNesting) + " levels deep");
  }
}

void append_python_string_repr(std::string& out, std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  out.push_back(quote);
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    const uint32_t cp = utf8_decode(s, pos, &next);
    char buf[16];
    if (cp == static_cast<uint32_t>(quote) || cp == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(cp));
    } else if (cp == '\n') {
      out += "\\n";
    } else if (cp == '\r') {
      out += "\\r";
    } else if (cp == '\t') {
      out += "\\t";
    } else if (cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", cp);
      out += buf;
    } else if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f) ||
               (cp >= 0x205f && cp <= 0x2064) || cp == 0x3000 || cp == 0xfeff) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
      out += buf;
    } else {
      out.append(s.substr(pos, next - pos));
    }
    pos = next;
  }
  out.push_back(quote);
}

void append_repr_at(std::string& out, const Value& v, int depth);

void append_sequence_repr(std::string& out, const std::vector<Value>& values, char open, char close,
                          bool tuple, int depth) {
  out.push_back(open);
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    append_repr_at(out, values[i], depth + 1);
  }
  if (tuple && values.size() == 1) out.push_back(',');
  out.push_back(close);
}

void append_dict_repr(std::string& out, const DictData& dict, int depth) {
  out.push_back('{');
  bool first = true;
  for (const auto& [key, value] : dict.items) {
    if (!first) out += ", ";
    first = false;
    append_repr_at(out, key, depth + 1);
    out += ": ";
    append_repr_at(out, value, depth + 1);
  }
  out.push_back('}');
}

void append_repr_at(std::string& out, const Value& v, int depth) {
  check_depth(depth);
  switch (v.kind) {
    case Kind::kString:
      append_python_string_repr(out, v.str());
      return;
    case Kind::kList:
      append_sequence_repr(out, v.items().values, '[', ']', false, depth);
      return;
    case Kind::kTuple:
      append_sequence_repr(out, v.items().values, '(', ')', true, depth);
      return;
    case Kind::kDict:
      append_dict_repr(out, v.entries(), depth);
      return;
    case Kind::kNamespace:
      out += "<Namespace ";
      append_dict_repr(out, v.entries(), depth);
      out += ">";
      return;
    case Kind::kUndefined:
      out += "Undefined";
      return;
    default:
      append_str(out, v);
      return;
  }
}

bool equal_at(const Value& a, const Value& b, int depth);

bool sequences_equal(const std::vector<Value>& a, const std::vector<Value>& b, int depth) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!equal_at(a[i], b[i], depth + 1)) return false;
  }
  return true;
}

bool equal_at(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_number() && b.is_number()) {
    int64_t ia = 0;
    int64_t ib = 0;
    if (as_integer(a, &ia) && as_integer(b, &ib)) return ia == ib;
    return as_double(a) == as_double(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Kind::kUndefined:
    case Kind::kNone:
      return true;
    case Kind::kString:
      return a.str() == b.str();
    case Kind::kList:
    case Kind::kTuple:
      return a.list_ptr() == b.list_ptr() ||
             sequences_equal(a.items().values, b.items().values, depth);
    case Kind::kDict: {
      const DictData& da = a.entries();
      const DictData& db = b.entries();
      if (&da == &db) return true;
      if (da.size() != db.size()) return false;
      for (const auto& [key, value] : da.items) {
        const Value* other = db.find(key);
        if (other == nullptr || !equal_at(value, *other, depth + 1)) return false;
      }
      return true;
    }
    case Kind::kNamespace:
      return a.dict_ptr() == b.dict_ptr();
    case Kind::kCallable:
      return std::get<CallablePtr>(a.data) == std::get<CallablePtr>(b.data);
    case Kind::kLoop:
      return std::get<LoopPtr>(a.data) == std::get<LoopPtr>(b.data);
    default:
      return false;
  }
}

bool less_at(const Value& a, const Value& b, int depth) {
  check_depth(depth);
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) {
    int64_t ia = 0;
    int64_t ib = 0;
    if (as_integer(a, &ia) && as_integer(b, &ib)) return ia < ib;
    return as_double(a) < as_double(b);
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();  // UTF-8 order == code point order
  if ((a.kind == Kind::kList || a.kind == Kind::kTuple) && a.kind == b.kind) {
    const auto& va = a.items().values;
    const auto& vb = b.items().values;
    const size_t n = std::min(va.size(), vb.size());
    for (size_t i = 0; i < n; ++i) {
      if (!equal_at(va[i], vb[i], depth + 1)) return less_at(va[i], vb[i], depth + 1);
    }
    return va.size() < vb.size();
  }
  throw Fault("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) +
              "'");
}

template <class Json>
Value from_json_at(const Json& j, int depth) {
  check_depth(depth);
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value::none();
    case nlohmann::json::value_t::boolean:
      return Value::boolean(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value::integer(j.template get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const uint64_t u = j.template get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::number(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value::number(j.template get<double>());
    case nlohmann::json::value_t::string:
      return Value::string(j.template get<std::string>());
    case nlohmann::json::value_t::array: {
      std::vector<Value> values;
      values.reserve(j.size());
      for (const auto& item : j) values.push_back(from_json_at(item, depth + 1));
      return Value::list(std::move(values));
    }
    case nlohmann::json::value_t::object: {
      Value dict = Value::dict();
      DictData& data = dict.entries();
      data.items.reserve(j.size());
      for (auto it = j.begin(); it != j.end(); ++it) {
        data.append_unique(Value::string(it.key()), from_json_at(it.value(), depth + 1));
      }
      return dict;
    }
    case nlohmann::json::value_t::binary:
      throw Fault("binary JSON values are not supported as template inputs");
    default:
      return Value::undefined();
  }
}

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  size_t pos = 0;
  while (pos < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[pos]);
    char buf[16];
    switch (c) {
      case '"':
        out += "\\\"";
        ++pos;
        continue;
      case '\\':
        out += "\\\\";
        ++pos;
        continue;
      case '\n':
        out += "\\n";
        ++pos;
        continue;
      case '\r':
        out += "\\r";
        ++pos;
        continue;
      case '\t':
        out += "\\t";
        ++pos;
        continue;
      case '\b':
        out += "\\b";
        ++pos;
        continue;
      case '\f':
        out += "\\f";
        ++pos;
        continue;
      default:
        break;
    }
    if (c < 0x20) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
      ++pos;
      continue;
    }
    if (c < 0x80 || !ensure_ascii) {
      out.push_back(static_cast<char>(c));
      ++pos;
      continue;
    }
    size_t next = pos;
    uint32_t cp = utf8_decode(s, pos, &next);
    if (cp >= 0x10000) {
      cp -= 0x10000;
      std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else {
      std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
    }
    out += buf;
    pos = next;
  }
  out.push_back('"');
}

std::string json_key(const Value& key) {
  switch (key.kind) {
    case Kind::kString:
      return key.str();
    case Kind::kBool:
      return key.as_bool() ? "true" : "false";
    case Kind::kNone:
      return "null";
    case Kind::kInt:
    case Kind::kFloat:
      return to_str(key);
    default:
      throw Fault("keys must be str, int, float, bool or None, not " + type_name(key));
  }
}

void append_json_newline(std::string& out, const JsonStyle& style, int level) {
  out.push_back('\n');
  for (int i = 0; i < level; ++i) out += style.indent;
}

void append_json_at(std::string& out, const Value& v, const JsonStyle& style, int depth) {
  check_depth(depth);
  switch (v.kind) {
    case Kind::kNone:
      out += "null";
      return;
    case Kind::kBool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Kind::kFloat: {
      const double d = v.as_float();
      if (std::isnan(d)) {
        out += "NaN";
      } else if (std::isinf(d)) {
        out += d > 0 ? "Infinity" : "-Infinity";
      } else {
        out += float_repr(d);
      }
      return;
    }
    case Kind::kString:
      append_json_string(out, v.str(), style.ensure_ascii);
      return;
    case Kind::kList:
    case Kind::kTuple: {
      const auto& values = v.items().values;
      if (values.empty()) {
        out += "[]";
        return;
      }
      out.push_back('[');
      for (size_t i = 0; i < values.size(); ++i) {
        if (i > 0) out += style.item_separator;
        if (style.has_indent) append_json_newline(out, style, depth + 1);
        append_json_at(out, values[i], style, depth + 1);
      }
      if (style.has_indent) append_json_newline(out, style, depth);
      out.push_back(']');
      return;
    }
    case Kind::kDict: {
      const auto& items = v.entries().items;
      if (items.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> members;
      members.reserve(items.size());
      for (const auto& [key, value] : items) members.emplace_back(json_key(key), &value);
      if (style.sort_keys) {
        std::stable_sort(members.begin(), members.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
      }
      out.push_back('{');
      for (size_t i = 0; i < members.size(); ++i) {
        if (i > 0) out += style.item_separator;
        if (style.has_indent) append_json_newline(out, style, depth + 1);
        append_json_string(out, members[i].first, style.ensure_ascii);
        out += style.key_separator;
        append_json_at(out, *members[i].second, style, depth + 1);
      }
      if (style.has_indent) append_json_newline(out, style, depth);
      out.push_back('}');
      return;
    }
    default:
      throw Fault("Object of type " + type_name(v) + " is not JSON serializable");
  }
}

}  // namespace

// --- Value -------------------------------------------------------------------------------------

Value Value::undefined(std::string hint) {
  Value v;
  if (!hint.empty()) v.data = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::string(std::string s) {
  return Value{Kind::kString, std::make_shared<const std::string>(std::move(s))};
}

Value Value::list(std::vector<Value> items) {
  return Value{Kind::kList, std::make_shared<ListData>(std::move(items))};
}

Value Value::tuple(std::vector<Value> items) {
  return Value{Kind::kTuple, std::make_shared<ListData>(std::move(items))};
}

Value Value::dict() {
  return Value{Kind::kDict, std::make_shared<DictData>()};
}

Value Value::namespace_object() {
  return Value{Kind::kNamespace, std::make_shared<DictData>()};
}

std::string Value::undefined_message() const {
  if (const auto* hint = std::get_if<StrPtr>(&data); hint != nullptr && *hint) return **hint;
  return "value is undefined";
}

ListData::~ListData() {
  release_children([this](std::vector<Value>& graveyard) {
    for (Value& v : values) {
      if (holds_container(v)) graveyard.push_back(std::move(v));
    }
  });
}

DictData::~DictData() {
  release_children([this](std::vector<Value>& graveyard) {
    for (auto& [key, value] : items) {
      if (holds_container(key)) graveyard.push_back(std::move(key));
      if (holds_container(value)) graveyard.push_back(std::move(value));
    }
  });
}

const Value* DictData::find_indexed(std::string_view key) const {
  constexpr size_t kIndexThreshold = 12;
  if (items.size() < kIndexThreshold) {
    for (const auto& [k, v] : items) {
      if (k.kind == Kind::kString && k.str() == key) return &v;
    }
    return nullptr;
  }
  if (!index_valid_) {
    index_.clear();
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].first.kind == Kind::kString) index_.emplace(items[i].first.str(), i);
    }
    index_valid_ = true;
  }
  auto it = index_.find(std::string(key));
  return it == index_.end() ? nullptr : &items[it->second].second;
}

const Value* DictData::find(std::string_view key) const {
  return find_indexed(key);
}

const Value* DictData::find(const Value& key) const {
  if (key.kind == Kind::kString) return find_indexed(key.str());
  for (const auto& [k, v] : items) {
    if (values_equal(k, key)) return &v;
  }
  return nullptr;
}

void DictData::set(Value key, Value value) {
  if (const Value* existing = find(key); existing != nullptr) {
    *const_cast<Value*>(existing) = std::move(value);
    return;
  }
  append_unique(std::move(key), std::move(value));
}

void DictData::append_unique(Value key, Value value) {
  if (index_valid_ && key.kind == Kind::kString) index_.emplace(key.str(), items.size());
  items.emplace_back(std::move(key), std::move(value));
}

void DictData::clear() {
  std::vector<std::pair<Value, Value>> doomed;
  doomed.swap(items);
  invalidate();
}

bool DictData::erase(const Value& key) {
  for (auto it = items.begin(); it != items.end(); ++it) {
    if (values_equal(it->first, key)) {
      items.erase(it);
      invalidate();
      return true;
    }
  }
  return false;
}

// --- Python semantics --------------------------------------------------------------------------

bool truthy(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return v.as_bool();
    case Kind::kInt:
      return v.as_int() != 0;
    case Kind::kFloat:
      return v.as_float() != 0.0;
    case Kind::kString:
      return !v.str().empty();
    case Kind::kList:
    case Kind::kTuple:
      return !v.items().values.empty();
    case Kind::kDict:
      return v.entries().size() != 0;
    default:
      return true;
  }
}

std::string float_repr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0.0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto result = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(result.ptr - buf));
  // sci looks like "-1.2345e-05": split into sign, digits and exponent.
  std::string out;
  size_t pos = 0;
  if (sci[pos] == '-') {
    out.push_back('-');
    ++pos;
  }
  const size_t e_pos = sci.find('e');
  std::string digits;
  for (size_t i = pos; i < e_pos; ++i) {
    if (sci[i] != '.') digits.push_back(sci[i]);
  }
  int exponent = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+' ? 1 : 0), sci.data() + sci.size(),
                  exponent);
  const int decpt = exponent + 1;  // position of the decimal point relative to the digits
  const int ndigits = static_cast<int>(digits.size());
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out += "0.";
      out.append(static_cast<size_t>(-decpt), '0');
      out += digits;
    } else if (decpt >= ndigits) {
      out += digits;
      out.append(static_cast<size_t>(decpt - ndigits), '0');
      out += ".0";
    } else {
      out += digits.substr(0, static_cast<size_t>(decpt));
      out.push_back('.');
      out += digits.substr(static_cast<size_t>(decpt));
    }
    return out;
  }
  out.push_back(digits[0]);
  if (ndigits > 1) {
    out.push_back('.');
    out += digits.substr(1);
  }
  const int e = decpt - 1;
  char ebuf[16];
  std::snprintf(ebuf, sizeof(ebuf), "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
  out += ebuf;
  return out;
}

void append_str(std::string& out, const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
      return;
    case Kind::kNone:
      out += "None";
      return;
    case Kind::kBool:
      out += v.as_bool() ? "True" : "False";
      return;
    case Kind::kInt:
      out += std::to_string(v.as_int());
      return;
    case Kind::kFloat:
      out += float_repr(v.as_float());
      return;
    case Kind::kString:
      out += v.str();
      return;
    case Kind::kCallable:
      out += "<function>";
      return;
    case Kind::kLoop:
      out += "<LoopContext>";
      return;
    default:
      append_repr_at(out, v, 0);
      return;
  }
}

std::string to_str(const Value& v) {
  if (v.kind == Kind::kString) return v.str();
  std::string out;
  append_str(out, v);
  return out;
}

void append_repr(std::string& out, const Value& v) {
  append_repr_at(out, v, 0);
}

std::string repr(const Value& v) {
  std::string out;
  append_repr_at(out, v, 0);
  return out;
}

std::string type_name(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kCallable:
      return "function";
    case Kind::kLoop:
      return "LoopContext";
  }
  return "object";
}

std::string object_description(const Value& v) {
  if (v.kind == Kind::kNone) return "None";
  return type_name(v) + " object";
}

bool values_equal(const Value& a, const Value& b) {
  return equal_at(a, b, 0);
}

bool value_less(const Value& a, const Value& b) {
  return less_at(a, b, 0);
}

void fail_undefined(const Value& v) {
  throw Fault(v.undefined_message());
}

bool as_integer(const Value& v, int64_t* out) {
  if (v.kind == Kind::kInt) {
    *out = v.as_int();
    return true;
  }
  if (v.kind == Kind::kBool) {
    *out = v.as_bool() ? 1 : 0;
    return true;
  }
  return false;
}

double as_double(const Value& v) {
  switch (v.kind) {
    case Kind::kFloat:
      return v.as_float();
    case Kind::kInt:
      return static_cast<double>(v.as_int());
    case Kind::kBool:
      return v.as_bool() ? 1.0 : 0.0;
    default:
      return 0.0;
  }
}

// --- Unicode -----------------------------------------------------------------------------------

bool is_ascii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

std::vector<size_t> utf8_offsets(std::string_view s) {
  std::vector<size_t> offsets;
  offsets.reserve(s.size() + 1);
  size_t pos = 0;
  while (pos < s.size()) {
    offsets.push_back(pos);
    size_t next = pos;
    utf8_decode(s, pos, &next);
    pos = next;
  }
  offsets.push_back(s.size());
  return offsets;
}

size_t utf8_length(std::string_view s) {
  if (is_ascii(s)) return s.size();
  size_t count = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    utf8_decode(s, pos, &next);
    pos = next;
    ++count;
  }
  return count;
}

uint32_t utf8_decode(std::string_view s, size_t pos, size_t* next) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(pos);
  size_t len = 1;
  uint32_t cp = b0;
  if (b0 >= 0xf0 && b0 < 0xf8) {
    len = 4;
    cp = b0 & 0x07;
  } else if (b0 >= 0xe0) {
    len = b0 < 0xf0 ? 3 : 1;
    cp = b0 & 0x0f;
  } else if (b0 >= 0xc0) {
    len = 2;
    cp = b0 & 0x1f;
  }
  if (len == 1 || pos + len > s.size()) {
    *next = pos + 1;
    return b0;
  }
  for (size_t i = 1; i < len; ++i) {
    if ((byte(pos + i) & 0xc0) != 0x80) {
      *next = pos + 1;
      return b0;
    }
    cp = (cp << 6) | (byte(pos + i) & 0x3f);
  }
  *next = pos + len;
  return cp;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

bool is_python_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x20) || cp == 0x85 || cp == 0xa0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

namespace {

// Blocks where upper and lower case alternate: even code point upper, odd lower (or the
// reverse when `odd_upper`).
struct AlternatingBlock {
  uint32_t first;
  uint32_t last;
  bool odd_upper;
};
constexpr AlternatingBlock kAlternating[] = {
    {0x0100, 0x012f, false}, {0x0132, 0x0137, false}, {0x0139, 0x0148, true},
    {0x014a, 0x0177, false}, {0x0179, 0x017e, true},  {0x0460, 0x0481, false},
    {0x048a, 0x04bf, false}, {0x04c1, 0x04ce, true},  {0x04d0, 0x052f, false},
    {0x1e00, 0x1e95, false}, {0x1ea0, 0x1eff, false},
};

// Blocks where the lower-case letter is at a fixed distance from the upper-case one.
struct OffsetBlock {
  uint32_t upper_first;
  uint32_t upper_last;
  int32_t offset;  // lower = upper + offset
};
constexpr OffsetBlock kOffsets[] = {
    {0x0041, 0x005a, 0x20},
    {0x00c0, 0x00d6, 0x20},
    {0x00d8, 0x00de, 0x20},
    {0x0391, 0x03a1, 0x20},
    {0x03a3, 0x03ab, 0x20},
    {0x0388, 0x038a, 0x25},
    {0x038e, 0x038f, 0x3f},
    {0x0410, 0x042f, 0x20},
    {0x0400, 0x040f, 0x50},
    {0x0531, 0x0556, 0x30},
    {0x10a0, 0x10c5, 0x1c60},
    {0x1c90, 0x1cba, 0x10d0 - 0x1c90},
    {0x1cbd, 0x1cbf, 0x10fd - 0x1cbd},
    {0x2160, 0x216f, 0x10},
    {0x24b6, 0x24cf, 0x1a},
    {0xff21, 0xff3a, 0x20},
};

// Pairs outside the regular blocks: {upper, lower}.
constexpr std::pair<uint32_t, uint32_t> kPairs[] = {
    {0x0178, 0x00ff}, {0x0386, 0x03ac}, {0x038c, 0x03cc}, {0x04c0, 0x04cf}, {0x1e9e, 0x00df},
};

uint32_t offset_lower(const OffsetBlock& b, uint32_t cp) {
  return static_cast<uint32_t>(static_cast<int64_t>(cp) + b.offset);
}

}  // namespace

uint32_t simple_lower(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 0x20 : cp;
  for (const OffsetBlock& b : kOffsets) {
    if (cp >= b.upper_first && cp <= b.upper_last) return offset_lower(b, cp);
  }
  for (const AlternatingBlock& b : kAlternating) {
    if (cp >= b.first && cp <= b.last) return ((cp & 1) != 0) == b.odd_upper ? cp + 1 : cp;
  }
  for (const auto& [upper, lower] : kPairs) {
    if (cp == upper) return lower;
  }
  if (cp == 0x0130) return 'i';  // full mapping "i\u0307" in append_lower
  return cp;
}

uint32_t simple_upper(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') ? cp - 0x20 : cp;
  if (cp == 0x00b5) return 0x039c;  // micro sign
  if (cp == 0x0131) return 'I';     // dotless i
  if (cp == 0x017f) return 'S';     // long s
  if (cp == 0x03c2) return 0x03a3;  // final sigma
  for (const OffsetBlock& b : kOffsets) {
    const uint32_t lower_first = offset_lower(b, b.upper_first);
    const uint32_t lower_last = offset_lower(b, b.upper_last);
    if (cp >= lower_first && cp <= lower_last) return b.upper_first + (cp - lower_first);
  }
  for (const AlternatingBlock& b : kAlternating) {
    if (cp >= b.first && cp <= b.last) return ((cp & 1) != 0) == b.odd_upper ? cp : cp - 1;
  }
  for (const auto& [upper, lower] : kPairs) {
    if (cp == lower && cp != 0x00df) return upper;
  }
  return cp;
}

void append_upper(std::string& out, uint32_t cp) {
  if (cp == 0x00df) {
    out += "SS";
    return;
  }
  utf8_append(out, simple_upper(cp));
}

void append_lower(std::string& out, uint32_t cp) {
  if (cp == 0x0130) {
    out += "i\xcc\x87";  // i + COMBINING DOT ABOVE
    return;
  }
  utf8_append(out, simple_lower(cp));
}

void append_title(std::string& out, uint32_t cp) {
  if (cp == 0x00df) {
    out += "Ss";
    return;
  }
  if (cp >= 0x10d0 && cp <= 0x10ff) {  // Georgian Mkhedruli is its own title case
    utf8_append(out, cp);
    return;
  }
  utf8_append(out, simple_upper(cp));
}

bool is_cased(uint32_t cp) {
  return cp == 0x00df || simple_upper(cp) != cp || simple_lower(cp) != cp;
}

// --- JSON --------------------------------------------------------------------------------------

Value from_json(const nlohmann::json& j) {
  return from_json_at(j, 0);
}
Value from_json(const nlohmann::ordered_json& j) {
  return from_json_at(j, 0);
}

void append_json(std::string& out, const Value& v, const JsonStyle& style) {
  append_json_at(out, v, style, 0);
}

}  // namespace ug::jinja
