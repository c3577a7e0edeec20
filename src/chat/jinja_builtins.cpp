// Builtin filters, tests, methods and globals of the Jinja interpreter, with Python semantics.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <initializer_list>
#include <unordered_map>

#include "chat/jinja_interp.h"
#include "chat/jinja_python.h"

namespace ug::jinja {
namespace {

// jinja2's sandbox refuses ranges longer than this (MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

// --- argument binding --------------------------------------------------------------------------

// Binds positional and keyword arguments to the named parameters of a builtin.
class Args {
 public:
  Args(std::string_view what, const CallArgs& args, std::initializer_list<std::string_view> names)
      : slots_(names.size(), nullptr) {
    if (args.positional.size() > names.size()) {
      throw Fault(std::string(what) + " takes at most " + std::to_string(names.size()) +
                  " argument(s) (" + std::to_string(args.positional.size()) + " given)");
    }
    for (size_t i = 0; i < args.positional.size(); ++i) slots_[i] = &args.positional[i];
    for (const auto& [key, value] : args.keyword) {
      const auto it = std::find(names.begin(), names.end(), key);
      if (it == names.end()) {
        throw Fault(std::string(what) + " got an unexpected keyword argument '" + key + "'");
      }
      const auto index = static_cast<size_t>(it - names.begin());
      if (slots_[index] != nullptr) {
        throw Fault(std::string(what) + " got multiple values for argument '" + key + "'");
      }
      slots_[index] = &value;
    }
  }
  const Value* get(size_t i) const { return slots_[i]; }
  bool has(size_t i) const { return slots_[i] != nullptr; }
  Value get_or(size_t i, Value fallback) const {
    return slots_[i] != nullptr ? *slots_[i] : std::move(fallback);
  }
  bool flag(size_t i, bool fallback) const {
    return slots_[i] != nullptr ? truthy(*slots_[i]) : fallback;
  }
  const Value& required(size_t i, std::string_view what, std::string_view name) const {
    if (slots_[i] == nullptr) {
      throw Fault(std::string(what) + " missing required argument '" + std::string(name) + "'");
    }
    return *slots_[i];
  }

 private:
  std::vector<const Value*> slots_;
};

Value repeat_sequence(Interp& interp, const Value& seq, int64_t times) {
  if (times <= 0) {
    if (seq.is_string()) return Value::string("");
    return seq.kind == Kind::kList ? Value::list() : Value::tuple();
  }
  if (seq.is_string()) {
    const std::string& s = seq.str();
    if (!s.empty() && static_cast<uint64_t>(times) > interp.options().max_output_bytes / s.size()) {
      interp.check_size(SIZE_MAX);
    }
    std::string out;
    out.reserve(s.size() * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i) out += s;
    interp.tick(out.size() / 64);
    return Value::string(std::move(out));
  }
  const auto& values = seq.items().values;
  const uint64_t total = values.size() * static_cast<uint64_t>(times);
  if (!values.empty() && (static_cast<uint64_t>(times) > (uint64_t{1} << 40) / values.size() ||
                          total > interp.options().max_output_bytes)) {
    throw Fault("sequence repetition too large");
  }
  interp.tick(total / 16);
  std::vector<Value> out;
  out.reserve(static_cast<size_t>(total));
  for (int64_t i = 0; i < times; ++i) out.insert(out.end(), values.begin(), values.end());
  return seq.kind == Kind::kList ? Value::list(std::move(out)) : Value::tuple(std::move(out));
}

[[noreturn]] void unsupported_operands(std::string_view op, const Value& a, const Value& b) {
  throw Fault("unsupported operand type(s) for " + std::string(op) + ": '" + type_name(a) +
              "' and '" + type_name(b) + "'");
}

// --- sorting helpers ---------------------------------------------------------------------------

// Sort key of jinja2's sort/dictsort/unique/min/max: strings lower-cased unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::string(to_lower(v.str()));
  return v;
}

Value attribute_key(Interp& interp, const Value& item, const Value* attribute,
                    bool case_sensitive) {
  if (attribute == nullptr || attribute->is_none()) return sort_key(item, case_sensitive);
  if (attribute->is_string() && attribute->str().find(',') != std::string::npos) {
    std::vector<Value> parts;
    size_t pos = 0;
    const std::string& spec = attribute->str();
    while (pos <= spec.size()) {
      size_t comma = spec.find(',', pos);
      if (comma == std::string::npos) comma = spec.size();
      const std::string path = python_strip(spec.substr(pos, comma - pos), nullptr, true, true);
      parts.push_back(sort_key(interp.lookup_path(item, path), case_sensitive));
      pos = comma + 1;
    }
    return Value::tuple(std::move(parts));
  }
  if (attribute->is_string())
    return sort_key(interp.lookup_path(item, attribute->str()), case_sensitive);
  int64_t index = 0;
  if (as_integer(*attribute, &index)) {
    return sort_key(interp.getitem(item, Value::integer(index)), case_sensitive);
  }
  throw Fault("attribute must be a string or an integer");
}

void stable_sort_by_keys(std::vector<Value>* items, const std::vector<Value>& keys, bool reverse) {
  std::vector<size_t> order(items->size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Python's sort with reverse=True keeps equal elements in their original order.
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return reverse ? value_less(keys[b], keys[a]) : value_less(keys[a], keys[b]);
  });
  std::vector<Value> sorted;
  sorted.reserve(items->size());
  for (size_t i : order) sorted.push_back(std::move((*items)[i]));
  *items = std::move(sorted);
}

// --- filters -----------------------------------------------------------------------------------

Value f_abs(Interp&, const Value& v, CallArgs& args) {
  Args("abs", args, {});
  int64_t i = 0;
  if (as_integer(v, &i)) {
    if (i == INT64_MIN) throw Fault("integer overflow");
    return Value::integer(i < 0 ? -i : i);
  }
  if (v.kind == Kind::kFloat) return Value::number(std::fabs(v.as_float()));
  if (v.is_undefined()) fail_undefined(v);
  throw Fault("bad operand type for abs(): '" + type_name(v) + "'");
}

Value f_attr(Interp& interp, const Value& v, CallArgs& args) {
  Args a("attr", args, {"name"});
  const std::string name = to_str(a.required(0, "attr", "name"));
  if (v.kind == Kind::kNamespace || v.kind == Kind::kLoop || v.is_undefined()) {
    return interp.getattr(v, name);
  }
  if (has_method(v, name)) return interp.getattr(v, name);
  return Value::undefined("'" + object_description(v) + "' has no attribute '" + name + "'");
}

Value f_batch(Interp& interp, const Value& v, CallArgs& args) {
  Args a("batch", args, {"linecount", "fill_with"});
  const int64_t size = int_arg(a.required(0, "batch", "linecount"), "batch");
  if (size <= 0) throw Fault("batch size must be positive");
  const Value* fill = a.get(1);
  std::vector<Value> items = interp.iterate(v);
  std::vector<Value> batches;
  std::vector<Value> current;
  for (Value& item : items) {
    current.push_back(std::move(item));
    if (static_cast<int64_t>(current.size()) == size) {
      batches.push_back(Value::list(std::move(current)));
      current.clear();
    }
  }
  if (!current.empty()) {
    if (fill != nullptr && !fill->is_none()) {
      while (static_cast<int64_t>(current.size()) < size) current.push_back(*fill);
    }
    batches.push_back(Value::list(std::move(current)));
  }
  return Value::list(std::move(batches));
}

Value f_capitalize(Interp&, const Value& v, CallArgs& args) {
  Args("capitalize", args, {});
  return Value::string(capitalize(to_str(v)));
}

Value f_center(Interp&, const Value& v, CallArgs& args) {
  Args a("center", args, {"width"});
  const int64_t width = int_arg(a.get_or(0, Value::integer(80)), "center");
  const std::string s = to_str(v);
  const auto len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return Value::string(s);
  const int64_t total = std::min<int64_t>(width - len, 1 << 20);
  // Python centers with the extra space on the right unless len and width are both odd.
  const int64_t left = total / 2 + (total & width & 1);
  return Value::string(std::string(static_cast<size_t>(left), ' ') + s +
                       std::string(static_cast<size_t>(total - left), ' '));
}

Value f_default(Interp&, const Value& v, CallArgs& args) {
  Args a("default", args, {"default_value", "boolean"});
  const bool boolean = a.flag(1, false);
  if (v.is_undefined() || (boolean && !truthy(v))) return a.get_or(0, Value::string(""));
  return v;
}

Value f_dictsort(Interp&, const Value& v, CallArgs& args) {
  Args a("dictsort", args, {"case_sensitive", "by", "reverse"});
  if (v.is_undefined()) fail_undefined(v);
  if (v.kind != Kind::kDict) throw Fault("dictsort expects a mapping, got '" + type_name(v) + "'");
  const bool case_sensitive = a.flag(0, false);
  const std::string by = to_str(a.get_or(1, Value::string("key")));
  if (by != "key" && by != "value") throw Fault("You can only sort by either 'key' or 'value'");
  const bool reverse = a.flag(2, false);
  std::vector<Value> items;
  std::vector<Value> keys;
  for (const auto& [key, value] : v.entries().items) {
    items.push_back(Value::tuple({key, value}));
    keys.push_back(sort_key(by == "key" ? key : value, case_sensitive));
  }
  stable_sort_by_keys(&items, keys, reverse);
  return Value::list(std::move(items));
}

Value f_escape(Interp&, const Value& v, CallArgs& args) {
  Args("escape", args, {});
  return Value::string(html_escape(to_str(v)));
}

Value f_first(Interp& interp, const Value& v, CallArgs& args) {
  Args("first", args, {});
  if (v.is_sequence_like()) {
    const auto& values = v.items().values;
    if (!values.empty()) return values.front();
  } else if (v.is_string() && !v.str().empty()) {
    size_t next = 0;
    utf8_decode(v.str(), 0, &next);
    return Value::string(v.str().substr(0, next));
  } else if (!v.is_string()) {
    std::vector<Value> items = interp.iterate(v);
    if (!items.empty()) return items.front();
  }
  return Value::undefined("No first item, sequence was empty.");
}

Value f_last(Interp& interp, const Value& v, CallArgs& args) {
  Args("last", args, {});
  std::vector<Value> items = v.is_sequence_like() ? v.items().values : interp.iterate(v);
  if (items.empty()) return Value::undefined("No last item, sequence was empty.");
  return items.back();
}

Value f_float(Interp&, const Value& v, CallArgs& args) {
  Args a("float", args, {"default"});
  if (v.is_undefined()) fail_undefined(v);
  if (v.kind == Kind::kFloat) return v;
  int64_t i = 0;
  if (as_integer(v, &i)) return Value::number(static_cast<double>(i));
  double d = 0.0;
  if (v.is_string() && parse_python_float(v.str(), &d)) return Value::number(d);
  return a.get_or(0, Value::number(0.0));
}

Value f_format(Interp& interp, const Value& v, CallArgs& args) {
  if (!args.positional.empty() && !args.keyword.empty()) {
    throw Fault("can't handle positional and keyword arguments at the same time");
  }
  if (!args.keyword.empty()) {
    Value mapping = Value::dict();
    for (const auto& [key, value] : args.keyword) mapping.entries().set(Value::string(key), value);
    return interp.make_string(percent_format(interp, to_str(v), mapping));
  }
  return interp.make_string(percent_format(interp, to_str(v), Value::tuple(args.positional)));
}

Value f_indent(Interp& interp, const Value& v, CallArgs& args) {
  Args a("indent", args, {"width", "first", "blank"});
  const Value width = a.get_or(0, Value::integer(4));
  std::string indention;
  if (width.is_string()) {
    indention = width.str();
  } else {
    const int64_t n = int_arg(width, "indent");
    indention = std::string(static_cast<size_t>(std::clamp<int64_t>(n, 0, 1 << 16)), ' ');
  }
  const bool first = a.flag(1, false);
  const bool blank = a.flag(2, false);
  if (v.is_undefined()) fail_undefined(v);
  const std::string s = to_str(v) + "\n";
  std::vector<std::string> lines = python_splitlines(s, false);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += "\n";
      if (blank || !lines[i].empty()) out += indention;
    }
    out += lines[i];
    interp.check_size(out.size());
  }
  if (first) out = indention + out;
  return interp.make_string(std::move(out));
}

Value f_int(Interp&, const Value& v, CallArgs& args) {
  Args a("int", args, {"default", "base"});
  const Value fallback = a.get_or(0, Value::integer(0));
  const int64_t base = int_arg(a.get_or(1, Value::integer(10)), "int");
  if (v.is_undefined()) fail_undefined(v);
  int64_t i = 0;
  if (as_integer(v, &i)) return Value::integer(i);
  if (v.kind == Kind::kFloat) {
    const double d = v.as_float();
    if (!std::isfinite(d) || std::fabs(d) >= 9.2e18) return fallback;
    return Value::integer(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    if (parse_python_int(v.str(), static_cast<int>(base), &i)) return Value::integer(i);
    double d = 0.0;
    if (parse_python_float(v.str(), &d) && std::isfinite(d) && std::fabs(d) < 9.2e18) {
      return Value::integer(static_cast<int64_t>(d));
    }
  }
  return fallback;
}

Value f_items(Interp&, const Value& v, CallArgs& args) {
  Args("items", args, {});
  if (v.is_undefined()) return Value::list();
  if (v.kind != Kind::kDict) throw Fault("Can only get item pairs from a mapping.");
  std::vector<Value> items;
  for (const auto& [key, value] : v.entries().items) items.push_back(Value::tuple({key, value}));
  return Value::list(std::move(items));
}

// keys / values: not jinja2 filters (there they are dict methods); accepted as an extension.
Value dict_part_filter(const Value& v, CallArgs& args, bool keys) {
  Args(keys ? "keys" : "values", args, {});
  if (v.is_undefined()) return Value::list();
  if (v.kind != Kind::kDict) {
    throw Fault(std::string(keys ? "keys" : "values") + " expects a mapping, got '" + type_name(v) +
                "'");
  }
  std::vector<Value> out;
  for (const auto& [key, value] : v.entries().items) out.push_back(keys ? key : value);
  return Value::list(std::move(out));
}
Value f_keys(Interp&, const Value& v, CallArgs& args) {
  return dict_part_filter(v, args, true);
}
Value f_values(Interp&, const Value& v, CallArgs& args) {
  return dict_part_filter(v, args, false);
}

Value f_join(Interp& interp, const Value& v, CallArgs& args) {
  Args a("join", args, {"d", "attribute"});
  const std::string separator = to_str(a.get_or(0, Value::string("")));
  const Value* attribute = a.get(1);
  std::string out;
  bool first = true;
  for (const Value& item : interp.iterate(v)) {
    if (!first) out += separator;
    first = false;
    if (attribute != nullptr && !attribute->is_none()) {
      append_str(out, attribute->is_string() ? interp.lookup_path(item, attribute->str())
                                             : interp.getitem(item, *attribute));
    } else {
      append_str(out, item);
    }
    interp.check_size(out.size());
  }
  interp.tick(out.size() / 64);
  return Value::string(std::move(out));
}

Value f_length(Interp&, const Value& v, CallArgs& args) {
  Args("length", args, {});
  switch (v.kind) {
    case Kind::kUndefined:
      return Value::integer(0);
    case Kind::kString:
      return Value::integer(static_cast<int64_t>(utf8_length(v.str())));
    case Kind::kList:
    case Kind::kTuple:
      return Value::integer(static_cast<int64_t>(v.items().values.size()));
    case Kind::kDict:
      return Value::integer(static_cast<int64_t>(v.entries().size()));
    case Kind::kLoop:
      return Value::integer(static_cast<int64_t>(v.loop_state().items.size()));
    default:
      throw Fault("object of type '" + type_name(v) + "' has no len()");
  }
}

Value f_list(Interp& interp, const Value& v, CallArgs& args) {
  Args("list", args, {});
  return Value::list(interp.iterate(v));
}

Value f_lower(Interp&, const Value& v, CallArgs& args) {
  Args("lower", args, {});
  return Value::string(to_lower(to_str(v)));
}

Value f_upper(Interp&, const Value& v, CallArgs& args) {
  Args("upper", args, {});
  return Value::string(to_upper(to_str(v)));
}

Value f_map(Interp& interp, const Value& v, CallArgs& args) {
  // jinja2 only iterates truthy inputs: none | map(...) is empty.
  std::vector<Value> items = truthy(v) ? interp.iterate(v) : std::vector<Value>{};
  std::vector<Value> out;
  out.reserve(items.size());
  const Value* attribute = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [key, value] : args.keyword) {
    if (key == "attribute") attribute = &value;
    if (key == "default") fallback = &value;
  }
  if (attribute != nullptr) {
    for (const auto& [key, value] : args.keyword) {
      if (key != "attribute" && key != "default") {
        throw Fault("map got an unexpected keyword argument '" + key + "'");
      }
    }
    for (const Value& item : items) {
      interp.tick();
      Value result = attribute->is_string() ? interp.lookup_path(item, attribute->str())
                                            : interp.getitem(item, *attribute);
      if (result.is_undefined() && fallback != nullptr) result = *fallback;
      out.push_back(std::move(result));
    }
    return Value::list(std::move(out));
  }
  if (args.positional.empty()) throw Fault("map requires a filter argument");
  const std::string name = str_arg(args.positional[0], "map");
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : items) {
    interp.tick();
    CallArgs call = rest;
    out.push_back(interp.apply_filter(name, item, call));
  }
  return Value::list(std::move(out));
}

Value min_or_max(Interp& interp, const Value& v, CallArgs& args, bool want_max) {
  Args a(want_max ? "max" : "min", args, {"case_sensitive", "attribute"});
  const bool case_sensitive = a.flag(0, false);
  const Value* attribute = a.get(1);
  std::vector<Value> items = interp.iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = attribute_key(interp, items[0], attribute, case_sensitive);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = attribute_key(interp, items[i], attribute, case_sensitive);
    const bool better = want_max ? value_less(best_key, key) : value_less(key, best_key);
    if (better) {
      best = i;
      best_key = std::move(key);
    }
  }
  return items[best];
}

Value f_max(Interp& interp, const Value& v, CallArgs& args) {
  return min_or_max(interp, v, args, true);
}
Value f_min(Interp& interp, const Value& v, CallArgs& args) {
  return min_or_max(interp, v, args, false);
}

Value f_pprint(Interp&, const Value& v, CallArgs& args) {
  Args("pprint", args, {});
  return Value::string(repr(v));
}

Value f_replace(Interp& interp, const Value& v, CallArgs& args) {
  Args a("replace", args, {"old", "new", "count"});
  const std::string old = to_str(a.required(0, "replace", "old"));
  const std::string with = to_str(a.required(1, "replace", "new"));
  const Value count = a.get_or(2, Value::none());
  const int64_t n = count.is_none() ? -1 : int_arg(count, "replace");
  const std::string s = to_str(v);
  if (!old.empty() && with.size() > old.size()) {
    // Bound the result before building it: every occurrence grows the string.
    size_t hits = 0;
    for (size_t pos = s.find(old); pos != std::string::npos; pos = s.find(old, pos + old.size())) {
      ++hits;
    }
    interp.check_size(s.size() + hits * (with.size() - old.size()));
  } else if (old.empty()) {
    interp.check_size(s.size() + (utf8_length(s) + 1) * with.size());
  }
  std::string out = python_replace(s, old, with, n);
  interp.tick(out.size() / 64);
  return interp.make_string(std::move(out));
}

Value f_reverse(Interp& interp, const Value& v, CallArgs& args) {
  Args("reverse", args, {});
  if (v.is_string()) {
    const std::string& s = v.str();
    const std::vector<size_t> offsets = utf8_offsets(s);
    std::string out;
    out.reserve(s.size());
    for (size_t i = offsets.size() - 1; i > 0; --i) {
      out.append(s, offsets[i - 1], offsets[i] - offsets[i - 1]);
    }
    return Value::string(std::move(out));
  }
  std::vector<Value> items = interp.iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value f_round(Interp&, const Value& v, CallArgs& args) {
  Args a("round", args, {"precision", "method"});
  const int64_t precision = int_arg(a.get_or(0, Value::integer(0)), "round");
  const std::string method = to_str(a.get_or(1, Value::string("common")));
  if (method != "common" && method != "ceil" && method != "floor") {
    throw Fault("method must be common, ceil or floor");
  }
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_number()) throw Fault("type " + type_name(v) + " doesn't define __round__ method");
  int64_t i = 0;
  if (method == "common") {
    if (as_integer(v, &i) && precision >= 0) return Value::integer(i);
    return Value::number(python_round(as_double(v), precision));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double scaled = as_double(v) * scale;
  return Value::number((method == "ceil" ? std::ceil(scaled) : std::floor(scaled)) / scale);
}

Value f_safe(Interp&, const Value& v, CallArgs& args) {
  Args("safe", args, {});
  return v.is_string() ? v : Value::string(to_str(v));
}

bool test_item(Interp& interp, const Value& item, const std::string* test_name,
               const CallArgs& test_args) {
  if (test_name == nullptr) return truthy(item);
  CallArgs call = test_args;
  return interp.apply_test(*test_name, item, call);
}

// select / reject / selectattr / rejectattr.
Value select_common(Interp& interp, const Value& v, CallArgs& args, bool with_attribute,
                    bool keep_matching, std::string_view what) {
  size_t next = 0;
  std::string attribute;
  if (with_attribute) {
    if (args.positional.empty()) throw Fault(std::string(what) + " requires an attribute name");
    attribute = to_str(args.positional[0]);
    next = 1;
  }
  std::string test_name;
  const bool has_test = args.positional.size() > next;
  if (has_test) test_name = str_arg(args.positional[next], what);
  CallArgs test_args;
  if (has_test) {
    test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(next + 1),
                                args.positional.end());
  }
  test_args.keyword = args.keyword;
  std::vector<Value> out;
  if (!truthy(v)) return Value::list();  // jinja2 only iterates truthy inputs
  for (const Value& item : interp.iterate(v)) {
    interp.tick();
    const Value subject = with_attribute ? interp.lookup_path(item, attribute) : item;
    if (test_item(interp, subject, has_test ? &test_name : nullptr, test_args) == keep_matching) {
      out.push_back(item);
    }
  }
  return Value::list(std::move(out));
}

Value f_select(Interp& i, const Value& v, CallArgs& a) {
  return select_common(i, v, a, false, true, "select");
}
Value f_reject(Interp& i, const Value& v, CallArgs& a) {
  return select_common(i, v, a, false, false, "reject");
}
Value f_selectattr(Interp& i, const Value& v, CallArgs& a) {
  return select_common(i, v, a, true, true, "selectattr");
}
Value f_rejectattr(Interp& i, const Value& v, CallArgs& a) {
  return select_common(i, v, a, true, false, "rejectattr");
}

Value f_sort(Interp& interp, const Value& v, CallArgs& args) {
  Args a("sort", args, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = a.flag(0, false);
  const bool case_sensitive = a.flag(1, false);
  const Value* attribute = a.get(2);
  std::vector<Value> items = interp.iterate(v);
  std::vector<Value> keys;
  keys.reserve(items.size());
  for (const Value& item : items)
    keys.push_back(attribute_key(interp, item, attribute, case_sensitive));
  interp.tick(items.size());
  stable_sort_by_keys(&items, keys, reverse);
  return Value::list(std::move(items));
}

Value f_string(Interp&, const Value& v, CallArgs& args) {
  Args("string", args, {});
  return v.is_string() ? v : Value::string(to_str(v));
}

Value f_sum(Interp& interp, const Value& v, CallArgs& args) {
  Args a("sum", args, {"attribute", "start"});
  const Value* attribute = a.get(0);
  Value total = a.get_or(1, Value::integer(0));
  for (const Value& item : interp.iterate(v)) {
    interp.tick();
    const Value term = (attribute != nullptr && !attribute->is_none())
                           ? (attribute->is_string() ? interp.lookup_path(item, attribute->str())
                                                     : interp.getitem(item, *attribute))
                           : item;
    total = binary_arithmetic(interp, "+", total, term);
  }
  return total;
}

Value f_title(Interp&, const Value& v, CallArgs& args) {
  Args("title", args, {});
  return Value::string(jinja_title(to_str(v)));
}

Value f_truncate(Interp&, const Value& v, CallArgs& args) {
  Args a("truncate", args, {"length", "killwords", "end", "leeway"});
  const int64_t length = int_arg(a.get_or(0, Value::integer(255)), "truncate");
  const bool killwords = a.flag(1, false);
  const std::string end = to_str(a.get_or(2, Value::string("...")));
  const int64_t leeway = int_arg(a.get_or(3, Value::integer(5)), "truncate");
  const auto end_length = static_cast<int64_t>(utf8_length(end));
  if (length < end_length) throw Fault("expected length >= " + std::to_string(end_length));
  if (leeway < 0) throw Fault("expected leeway >= 0");
  // jinja2 measures len() of the value itself; short non-strings come back unchanged.
  if (v.is_sequence_like() && static_cast<int64_t>(v.items().values.size()) <= length + leeway) {
    return v;
  }
  const std::string s = to_str(v);
  const std::vector<size_t> offsets = utf8_offsets(s);
  const auto n = static_cast<int64_t>(offsets.size() - 1);
  if (n <= length + leeway) return Value::string(s);
  std::string head = s.substr(0, offsets[static_cast<size_t>(length - end_length)]);
  if (!killwords) {
    const size_t space = head.rfind(' ');
    if (space != std::string::npos) head.resize(space);
  }
  return Value::string(head + end);
}

// jinja2 striptags: drop comments and tags, collapse whitespace, unescape basic entities.
Value f_striptags(Interp&, const Value& v, CallArgs& args) {
  Args("striptags", args, {});
  const std::string s = to_str(v);
  std::string text;
  size_t pos = 0;
  while (pos < s.size()) {
    if (s.compare(pos, 4, "<!--") == 0) {
      const size_t close = s.find("-->", pos + 4);
      if (close != std::string::npos) {
        pos = close + 3;
        continue;
      }
    } else if (s[pos] == '<') {
      const size_t close = s.find('>', pos + 1);
      if (close != std::string::npos) {
        pos = close + 1;
        continue;
      }
    }
    text.push_back(s[pos++]);
  }
  std::string collapsed;
  for (const std::string& word : python_split(text, nullptr, -1, false)) {
    if (!collapsed.empty()) collapsed.push_back(' ');
    collapsed += word;
  }
  static constexpr std::pair<std::string_view, std::string_view> kEntities[] = {
      {"&lt;", "<"},   {"&gt;", ">"},  {"&quot;", "\""},
      {"&#34;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}};
  for (const auto& [entity, plain] : kEntities) {
    collapsed = python_replace(collapsed, std::string(entity), std::string(plain), -1);
  }
  return Value::string(std::move(collapsed));
}

Value f_tojson(Interp& interp, const Value& v, CallArgs& args) {
  // Hugging Face's signature: tojson(x, ensure_ascii=False, indent=None, separators=None,
  // sort_keys=False), i.e. Python json.dumps.
  Args a("tojson", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonStyle style;
  style.ensure_ascii = a.flag(0, false);
  const Value indent = a.get_or(1, Value::none());
  if (indent.is_string()) {
    style.has_indent = true;
    style.indent = indent.str();
  } else if (!indent.is_none()) {
    const int64_t n = int_arg(indent, "tojson indent");
    style.has_indent = true;
    style.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(n, 0, 1 << 10)), ' ');
  }
  if (style.has_indent) style.item_separator = ",";
  const Value separators = a.get_or(2, Value::none());
  if (!separators.is_none()) {
    if (!separators.is_sequence_like() || separators.items().values.size() != 2) {
      throw Fault("tojson separators must be a pair of strings");
    }
    style.item_separator = str_arg(separators.items().values[0], "tojson separators");
    style.key_separator = str_arg(separators.items().values[1], "tojson separators");
  }
  style.sort_keys = a.flag(3, false);
  std::string out;
  append_json(out, v, style);
  interp.tick(out.size() / 64);
  return interp.make_string(std::move(out));
}

Value f_trim(Interp&, const Value& v, CallArgs& args) {
  Args a("trim", args, {"chars"});
  return Value::string(python_strip(to_str(v), a.get(0), true, true));
}

Value f_unique(Interp& interp, const Value& v, CallArgs& args) {
  Args a("unique", args, {"case_sensitive", "attribute"});
  const bool case_sensitive = a.flag(0, false);
  const Value* attribute = a.get(1);
  std::vector<Value> out;
  std::vector<Value> seen;
  for (const Value& item : interp.iterate(v)) {
    Value key = attribute_key(interp, item, attribute, case_sensitive);
    interp.tick(seen.size() / 16 + 1);
    bool duplicate = false;
    for (const Value& s : seen) {
      if (values_equal(s, key)) {
        duplicate = true;
        break;
      }
    }
    if (duplicate) continue;
    seen.push_back(std::move(key));
    out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value f_wordcount(Interp&, const Value& v, CallArgs& args) {
  Args("wordcount", args, {});
  const std::string s = to_str(v);
  int64_t count = 0;
  bool in_word = false;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    const bool word = ascii_alpha(u) || (u >= '0' && u <= '9') || u == '_' || u >= 0x80;
    if (word && !in_word) ++count;
    in_word = word;
  }
  return Value::integer(count);
}

const std::unordered_map<std::string_view, FilterFn>& filter_table() {
  static const std::unordered_map<std::string_view, FilterFn> table = {
      {"abs", f_abs},
      {"attr", f_attr},
      {"batch", f_batch},
      {"capitalize", f_capitalize},
      {"center", f_center},
      {"count", f_length},
      {"d", f_default},
      {"default", f_default},
      {"dictsort", f_dictsort},
      {"e", f_escape},
      {"escape", f_escape},
      {"first", f_first},
      {"float", f_float},
      {"forceescape", f_escape},
      {"format", f_format},
      {"indent", f_indent},
      {"int", f_int},
      {"items", f_items},
      {"join", f_join},
      {"keys", f_keys},
      {"last", f_last},
      {"length", f_length},
      {"list", f_list},
      {"lower", f_lower},
      {"map", f_map},
      {"max", f_max},
      {"min", f_min},
      {"pprint", f_pprint},
      {"reject", f_reject},
      {"rejectattr", f_rejectattr},
      {"replace", f_replace},
      {"reverse", f_reverse},
      {"round", f_round},
      {"safe", f_safe},
      {"select", f_select},
      {"selectattr", f_selectattr},
      {"sort", f_sort},
      {"string", f_string},
      {"striptags", f_striptags},
      {"sum", f_sum},
      {"title", f_title},
      {"tojson", f_tojson},
      {"trim", f_trim},
      {"truncate", f_truncate},
      {"unique", f_unique},
      {"upper", f_upper},
      {"values", f_values},
      {"wordcount", f_wordcount},
  };
  return table;
}

// --- tests -------------------------------------------------------------------------------------

const Value& one_arg(const CallArgs& args, std::string_view test) {
  if (args.positional.size() != 1 || !args.keyword.empty()) {
    throw Fault("test '" + std::string(test) + "' takes exactly one argument");
  }
  return args.positional[0];
}

void no_args(const CallArgs& args, std::string_view test) {
  if (!args.positional.empty() || !args.keyword.empty()) {
    throw Fault("test '" + std::string(test) + "' takes no arguments");
  }
}

bool t_defined(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "defined"), !v.is_undefined();
}
bool t_undefined(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "undefined"), v.is_undefined();
}
bool t_none(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "none"), v.is_none();
}
bool t_boolean(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "boolean"), v.kind == Kind::kBool;
}
bool t_true(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "true"), v.kind == Kind::kBool && v.as_bool();
}
bool t_false(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "false"), v.kind == Kind::kBool && !v.as_bool();
}
bool t_integer(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "integer"), v.kind == Kind::kInt;
}
bool t_float(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "float"), v.kind == Kind::kFloat;
}
bool t_number(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "number"), v.is_number();
}
bool t_string(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "string"), v.is_string();
}
bool t_mapping(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "mapping"), v.is_mapping();
}
bool t_sequence(Interp&, const Value& v, CallArgs& a) {
  no_args(a, "sequence");
  // jinja2: anything with len() and [] -- str, list, tuple, dict, and Undefined.
  return v.is_string() || v.is_sequence_like() || v.is_mapping() || v.is_undefined();
}
bool t_iterable(Interp&, const Value& v, CallArgs& a) {
  no_args(a, "iterable");
  return v.is_string() || v.is_sequence_like() || v.is_mapping() || v.is_undefined() ||
         v.kind == Kind::kLoop;
}
bool t_callable(Interp&, const Value& v, CallArgs& a) {
  no_args(a, "callable");
  return v.kind == Kind::kCallable || v.kind == Kind::kLoop;
}
bool t_escaped(Interp&, const Value&, CallArgs& a) {
  return no_args(a, "escaped"), false;
}

bool t_odd(Interp& interp, const Value& v, CallArgs& a) {
  no_args(a, "odd");
  return values_equal(binary_arithmetic(interp, "%", v, Value::integer(2)), Value::integer(1));
}
bool t_even(Interp& interp, const Value& v, CallArgs& a) {
  no_args(a, "even");
  return values_equal(binary_arithmetic(interp, "%", v, Value::integer(2)), Value::integer(0));
}
bool t_divisibleby(Interp& interp, const Value& v, CallArgs& a) {
  const Value& n = one_arg(a, "divisibleby");
  return values_equal(binary_arithmetic(interp, "%", v, n), Value::integer(0));
}
bool t_eq(Interp&, const Value& v, CallArgs& a) {
  return values_equal(v, one_arg(a, "eq"));
}
bool t_ne(Interp&, const Value& v, CallArgs& a) {
  return !values_equal(v, one_arg(a, "ne"));
}
bool t_lt(Interp&, const Value& v, CallArgs& a) {
  return value_less(v, one_arg(a, "lt"));
}
bool t_gt(Interp&, const Value& v, CallArgs& a) {
  return value_less(one_arg(a, "gt"), v);
}
bool t_le(Interp&, const Value& v, CallArgs& a) {
  const Value& o = one_arg(a, "le");
  return value_less(v, o) || values_equal(v, o);
}
bool t_ge(Interp&, const Value& v, CallArgs& a) {
  const Value& o = one_arg(a, "ge");
  return value_less(o, v) || values_equal(v, o);
}
bool t_in(Interp&, const Value& v, CallArgs& a) {
  return contains(one_arg(a, "in"), v);
}
bool t_sameas(Interp&, const Value& v, CallArgs& a) {
  const Value& o = one_arg(a, "sameas");
  if (v.kind != o.kind) return false;
  switch (v.kind) {
    case Kind::kNone:
    case Kind::kUndefined:
      return true;
    case Kind::kBool:
    case Kind::kInt:
    case Kind::kFloat:
    case Kind::kString:
      return values_equal(v, o);
    default:
      return v.data == o.data;
  }
}
bool has_cased(const std::string& s, bool want_lower) {
  bool any = false;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    const uint32_t cp = utf8_decode(s, pos, &next);
    pos = next;
    const bool lower = simple_upper(cp) != cp || cp == 0x00df;
    const bool upper = simple_lower(cp) != cp;
    if ((want_lower && upper) || (!want_lower && lower)) return false;
    any = any || lower || upper;
  }
  return any;
}
bool t_lower(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "lower"), has_cased(to_str(v), true);
}
bool t_upper(Interp&, const Value& v, CallArgs& a) {
  return no_args(a, "upper"), has_cased(to_str(v), false);
}
bool t_filter(Interp&, const Value& v, CallArgs& a) {
  no_args(a, "filter");
  return v.is_string() && find_filter(v.str()) != nullptr;
}
bool t_test(Interp&, const Value& v, CallArgs& a) {
  no_args(a, "test");
  return v.is_string() && find_test(v.str()) != nullptr;
}

const std::unordered_map<std::string_view, TestFn>& test_table() {
  static const std::unordered_map<std::string_view, TestFn> table = {
      {"!=", t_ne},
      {"<", t_lt},
      {"<=", t_le},
      {"==", t_eq},
      {">", t_gt},
      {">=", t_ge},
      {"boolean", t_boolean},
      {"callable", t_callable},
      {"defined", t_defined},
      {"divisibleby", t_divisibleby},
      {"eq", t_eq},
      {"equalto", t_eq},
      {"escaped", t_escaped},
      {"even", t_even},
      {"false", t_false},
      {"filter", t_filter},
      {"float", t_float},
      {"ge", t_ge},
      {"greaterthan", t_gt},
      {"gt", t_gt},
      {"in", t_in},
      {"integer", t_integer},
      {"iterable", t_iterable},
      {"le", t_le},
      {"lessthan", t_lt},
      {"lower", t_lower},
      {"lt", t_lt},
      {"mapping", t_mapping},
      {"ne", t_ne},
      {"none", t_none},
      {"number", t_number},
      {"odd", t_odd},
      {"sameas", t_sameas},
      {"sequence", t_sequence},
      {"string", t_string},
      {"test", t_test},
      {"true", t_true},
      {"undefined", t_undefined},
      {"upper", t_upper},
  };
  return table;
}

// --- methods -----------------------------------------------------------------------------------

bool in_list(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool starts_or_ends(const std::string& s, const Value& affix, const Value* start, const Value* end,
                    bool at_start) {
  size_t begin = 0;
  size_t stop = s.size();
  byte_range(s, start, end, &begin, &stop);
  const std::string_view view = std::string_view(s).substr(begin, stop - begin);
  const auto check = [&](const Value& candidate) {
    const std::string a = str_arg(candidate, at_start ? "startswith" : "endswith");
    if (a.size() > view.size()) return false;
    return at_start ? view.substr(0, a.size()) == a : view.substr(view.size() - a.size()) == a;
  };
  if (affix.kind == Kind::kTuple) {
    for (const Value& candidate : affix.items().values) {
      if (check(candidate)) return true;
    }
    return false;
  }
  return check(affix);
}

bool all_chars(const std::string& s, bool (*pred)(unsigned char)) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!pred(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

Value list_of_strings(std::vector<std::string> parts) {
  std::vector<Value> values;
  values.reserve(parts.size());
  for (std::string& p : parts) values.push_back(Value::string(std::move(p)));
  return Value::list(std::move(values));
}

Value string_method(Interp& interp, const std::string& s, std::string_view name, CallArgs& args) {
  const std::string what = "str." + std::string(name);
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Args a(what, args, {"chars"});
    return Value::string(python_strip(s, a.get(0), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    Args a(what, args, {"sep", "maxsplit"});
    const int64_t maxsplit = int_arg(a.get_or(1, Value::integer(-1)), what);
    return list_of_strings(python_split(s, a.get(0), maxsplit, name == "rsplit"));
  }
  if (name == "splitlines") {
    Args a(what, args, {"keepends"});
    return list_of_strings(python_splitlines(s, a.flag(0, false)));
  }
  if (name == "startswith" || name == "endswith") {
    Args a(what, args, {"prefix", "start", "end"});
    return Value::boolean(
        starts_or_ends(s, a.required(0, what, "prefix"), a.get(1), a.get(2), name == "startswith"));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize" ||
      name == "swapcase" || name == "casefold") {
    Args(what, args, {});
    if (name == "upper") return Value::string(to_upper(s));
    if (name == "lower" || name == "casefold") return Value::string(to_lower(s));
    if (name == "title") return Value::string(python_title(s));
    if (name == "swapcase") return Value::string(swapcase(s));
    return Value::string(capitalize(s));
  }
  if (name == "replace") {
    Args a(what, args, {"old", "new", "count"});
    const std::string old = str_arg(a.required(0, what, "old"), what);
    const std::string with = str_arg(a.required(1, what, "new"), what);
    CallArgs forwarded;
    forwarded.positional = {Value::string(old), Value::string(with),
                            a.get_or(2, Value::integer(-1))};
    return find_filter("replace")(interp, Value::string(s), forwarded);
  }
  if (name == "format") return interp.make_string(python_format(interp, s, args));
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
    Args a(what, args, {"sub", "start", "end"});
    const std::string sub = str_arg(a.required(0, what, "sub"), what);
    size_t begin = 0;
    size_t end = s.size();
    byte_range(s, a.get(1), a.get(2), &begin, &end);
    const std::string_view view = std::string_view(s).substr(begin, end - begin);
    if (name == "count") {
      if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_length(view) + 1));
      int64_t n = 0;
      for (size_t p = view.find(sub); p != std::string_view::npos;
           p = view.find(sub, p + sub.size())) {
        ++n;
      }
      return Value::integer(n);
    }
    const size_t hit = (name == "find" || name == "index") ? view.find(sub) : view.rfind(sub);
    if (hit == std::string_view::npos) {
      if (name == "index" || name == "rindex") throw Fault("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(static_cast<int64_t>(code_point_index(s, begin + hit)));
  }
  if (name == "join") {
    Args a(what, args, {"iterable"});
    std::string out;
    bool first = true;
    size_t index = 0;
    for (const Value& item : interp.iterate(a.required(0, what, "iterable"))) {
      if (!item.is_string()) {
        throw Fault("sequence item " + std::to_string(index) + ": expected str instance, " +
                    type_name(item) + " found");
      }
      if (!first) out += s;
      first = false;
      out += item.str();
      interp.check_size(out.size());
      ++index;
    }
    return Value::string(std::move(out));
  }
  if (name == "isdigit" || name == "isdecimal" || name == "isnumeric") {
    Args(what, args, {});
    return Value::boolean(all_chars(s, [](unsigned char c) { return c >= '0' && c <= '9'; }));
  }
  if (name == "isalpha") {
    Args(what, args, {});
    return Value::boolean(
        all_chars(s, [](unsigned char c) { return ascii_alpha(c) || c >= 0x80; }));
  }
  if (name == "isalnum") {
    Args(what, args, {});
    return Value::boolean(all_chars(
        s, [](unsigned char c) { return ascii_alpha(c) || (c >= '0' && c <= '9') || c >= 0x80; }));
  }
  if (name == "isspace") {
    Args(what, args, {});
    if (s.empty()) return Value::boolean(false);
    for (uint32_t cp : code_points(s)) {
      if (!is_python_space(cp)) return Value::boolean(false);
    }
    return Value::boolean(true);
  }
  if (name == "islower" || name == "isupper") {
    Args(what, args, {});
    return Value::boolean(has_cased(s, name == "islower"));
  }
  if (name == "ljust" || name == "rjust" || name == "center") {
    Args a(what, args, {"width", "fillchar"});
    const int64_t width = std::min<int64_t>(int_arg(a.required(0, what, "width"), what), 1 << 20);
    const std::string fill = str_arg(a.get_or(1, Value::string(" ")), what);
    if (utf8_length(fill) != 1)
      throw Fault("the fill character must be exactly one character long");
    if (name == "center") {
      const auto len = static_cast<int64_t>(utf8_length(s));
      if (width <= len) return Value::string(s);
      const int64_t total = width - len;
      const int64_t left = total / 2 + (total & width & 1);
      std::string out;
      for (int64_t i = 0; i < left; ++i) out += fill;
      out += s;
      for (int64_t i = 0; i < total - left; ++i) out += fill;
      return Value::string(std::move(out));
    }
    return Value::string(pad(s, width, name == "ljust" ? '<' : '>', fill));
  }
  if (name == "zfill") {
    Args a(what, args, {"width"});
    const int64_t width = std::min<int64_t>(int_arg(a.required(0, what, "width"), what), 1 << 20);
    const auto len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return Value::string(s);
    const size_t sign = (!s.empty() && (s[0] == '+' || s[0] == '-')) ? 1 : 0;
    return Value::string(s.substr(0, sign) + std::string(static_cast<size_t>(width - len), '0') +
                         s.substr(sign));
  }
  if (name == "partition" || name == "rpartition") {
    Args a(what, args, {"sep"});
    const std::string sep = str_arg(a.required(0, what, "sep"), what);
    if (sep.empty()) throw Fault("empty separator");
    const size_t hit = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (hit == std::string::npos) {
      return name == "partition"
                 ? Value::tuple({Value::string(s), Value::string(""), Value::string("")})
                 : Value::tuple({Value::string(""), Value::string(""), Value::string(s)});
    }
    return Value::tuple({Value::string(s.substr(0, hit)), Value::string(sep),
                         Value::string(s.substr(hit + sep.size()))});
  }
  if (name == "removeprefix" || name == "removesuffix") {
    Args a(what, args, {"affix"});
    const std::string affix = str_arg(a.required(0, what, "affix"), what);
    if (name == "removeprefix") {
      return Value::string(s.compare(0, affix.size(), affix) == 0 ? s.substr(affix.size()) : s);
    }
    if (s.size() >= affix.size() && s.compare(s.size() - affix.size(), affix.size(), affix) == 0) {
      return Value::string(s.substr(0, s.size() - affix.size()));
    }
    return Value::string(s);
  }
  throw Fault("'str' object has no attribute '" + std::string(name) + "'");
}

Value list_method(Interp& interp, const Value& self, std::string_view name, CallArgs& args) {
  const std::string what = type_name(self) + "." + std::string(name);
  std::vector<Value>& values = self.items().values;
  if (name == "index" || name == "count") {
    Args a(what, args, {"value"});
    const Value& needle = a.required(0, what, "value");
    int64_t count = 0;
    for (size_t i = 0; i < values.size(); ++i) {
      if (!values_equal(values[i], needle)) continue;
      if (name == "index") return Value::integer(static_cast<int64_t>(i));
      ++count;
    }
    if (name == "index") throw Fault(repr(needle) + " is not in list");
    return Value::integer(count);
  }
  if (self.kind != Kind::kList)
    throw Fault("'tuple' object has no attribute '" + std::string(name) + "'");
  if (name == "append") {
    Args a(what, args, {"object"});
    const Value& item = a.required(0, what, "object");
    interp.note_store(self, item);
    values.push_back(item);
    return Value::none();
  }
  if (name == "extend") {
    Args a(what, args, {"iterable"});
    std::vector<Value> items = interp.iterate(a.required(0, what, "iterable"));
    for (const Value& item : items) interp.note_store(self, item);
    values.insert(values.end(), items.begin(), items.end());
    return Value::none();
  }
  if (name == "insert") {
    Args a(what, args, {"index", "object"});
    int64_t index = int_arg(a.required(0, what, "index"), what);
    const Value& item = a.required(1, what, "object");
    interp.note_store(self, item);
    const auto n = static_cast<int64_t>(values.size());
    if (index < 0) index = std::max<int64_t>(0, index + n);
    index = std::min(index, n);
    values.insert(values.begin() + index, item);
    return Value::none();
  }
  if (name == "pop") {
    Args a(what, args, {"index"});
    int64_t index = int_arg(a.get_or(0, Value::integer(-1)), what);
    const auto n = static_cast<int64_t>(values.size());
    if (index < 0) index += n;
    if (index < 0 || index >= n) throw Fault("pop index out of range");
    Value out = values[static_cast<size_t>(index)];
    values.erase(values.begin() + index);
    return out;
  }
  if (name == "remove") {
    Args a(what, args, {"value"});
    const Value& needle = a.required(0, what, "value");
    for (auto it = values.begin(); it != values.end(); ++it) {
      if (values_equal(*it, needle)) {
        values.erase(it);
        return Value::none();
      }
    }
    throw Fault("list.remove(x): x not in list");
  }
  if (name == "reverse") {
    Args(what, args, {});
    std::reverse(values.begin(), values.end());
    return Value::none();
  }
  if (name == "copy") {
    Args(what, args, {});
    return Value::list(values);
  }
  throw Fault("'list' object has no attribute '" + std::string(name) + "'");
}

Value dict_method(Interp& interp, const Value& self, std::string_view name, CallArgs& args) {
  const std::string what = "dict." + std::string(name);
  DictData& dict = self.entries();
  if (name == "items" || name == "keys" || name == "values") {
    Args(what, args, {});
    std::vector<Value> out;
    out.reserve(dict.size());
    for (const auto& [key, value] : dict.items) {
      if (name == "items") {
        out.push_back(Value::tuple({key, value}));
      } else {
        out.push_back(name == "keys" ? key : value);
      }
    }
    return Value::list(std::move(out));
  }
  if (name == "get") {
    Args a(what, args, {"key", "default"});
    if (const Value* found = dict.find(a.required(0, what, "key"))) return *found;
    return a.get_or(1, Value::none());
  }
  if (name == "copy") {
    Args(what, args, {});
    Value copy = Value::dict();
    for (const auto& [key, value] : dict.items) copy.entries().append_unique(key, value);
    return copy;
  }
  if (name == "update") {
    if (args.positional.size() > 1) throw Fault("update expected at most 1 argument");
    if (!args.positional.empty()) {
      const Value& other = args.positional[0];
      if (other.kind != Kind::kDict) throw Fault("dict.update expects a mapping");
      for (const auto& [key, value] : other.entries().items) {
        interp.note_store(self, key);
        interp.note_store(self, value);
        dict.set(key, value);
      }
    }
    for (const auto& [key, value] : args.keyword) {
      interp.note_store(self, value);
      dict.set(Value::string(key), value);
    }
    return Value::none();
  }
  if (name == "pop") {
    Args a(what, args, {"key", "default"});
    const Value& key = a.required(0, what, "key");
    if (const Value* found = dict.find(key)) {
      Value out = *found;
      dict.erase(key);
      return out;
    }
    if (a.has(1)) return *a.get(1);
    throw Fault("KeyError: " + repr(key));
  }
  if (name == "setdefault") {
    Args a(what, args, {"key", "default"});
    const Value& key = a.required(0, what, "key");
    if (const Value* found = dict.find(key)) return *found;
    Value fallback = a.get_or(1, Value::none());
    interp.note_store(self, fallback);
    dict.set(key, fallback);
    return fallback;
  }
  throw Fault("'dict' object has no attribute '" + std::string(name) + "'");
}

Value loop_method(const Value& self, std::string_view name, CallArgs& args) {
  LoopState& loop = self.loop_state();
  if (name == "cycle") {
    if (args.positional.empty()) throw Fault("no items for cycling given");
    return args.positional[loop.index0 % args.positional.size()];
  }
  // changed(*values): true when the values differ from the previous call's.
  const Value current = Value::tuple(args.positional);
  if (loop.has_changed_value && values_equal(loop.changed_value, current)) {
    return Value::boolean(false);
  }
  loop.changed_value = current;
  loop.has_changed_value = true;
  return Value::boolean(true);
}

// --- globals -----------------------------------------------------------------------------------

Value g_range(Interp& interp, CallArgs& args) {
  if (!args.keyword.empty()) throw Fault("range() takes no keyword arguments");
  const size_t n = args.positional.size();
  if (n < 1 || n > 3) throw Fault("range expected 1 to 3 arguments, got " + std::to_string(n));
  int64_t start = 0;
  int64_t stop = 0;
  int64_t step = 1;
  if (n == 1) {
    stop = int_arg(args.positional[0], "range");
  } else {
    start = int_arg(args.positional[0], "range");
    stop = int_arg(args.positional[1], "range");
    if (n == 3) step = int_arg(args.positional[2], "range");
  }
  if (step == 0) throw Fault("range() arg 3 must not be zero");
  // Count without overflow: the values are bounded by the int64 inputs.
  const long double span = static_cast<long double>(stop) - static_cast<long double>(start);
  const long double count_ld = span / static_cast<long double>(step);
  const int64_t count = count_ld <= 0 ? 0 : static_cast<int64_t>(std::ceil(count_ld));
  if (count > kMaxRange) {
    throw Fault("range too big: " + std::to_string(count) + " items (the limit is " +
                std::to_string(kMaxRange) + ")");
  }
  interp.tick(static_cast<uint64_t>(count) / 16);
  std::vector<Value> values;
  values.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) values.push_back(Value::integer(start + i * step));
  return Value::list(std::move(values));
}

void copy_mapping_into(Interp& interp, const Value& target, CallArgs& args, std::string_view what) {
  for (const Value& positional : args.positional) {
    if (positional.kind == Kind::kDict || positional.kind == Kind::kNamespace) {
      for (const auto& [key, value] : positional.entries().items) target.entries().set(key, value);
    } else if (positional.is_sequence_like()) {
      for (const Value& pair : positional.items().values) {
        if (!pair.is_sequence_like() || pair.items().values.size() != 2) {
          throw Fault(std::string(what) + ": sequence elements must be pairs");
        }
        target.entries().set(pair.items().values[0], pair.items().values[1]);
      }
    } else {
      throw Fault(std::string(what) + ": expected a mapping, got '" + type_name(positional) + "'");
    }
  }
  for (const auto& [key, value] : args.keyword) target.entries().set(Value::string(key), value);
  (void)interp;
}

Value g_namespace(Interp& interp, CallArgs& args) {
  Value ns = Value::namespace_object();
  copy_mapping_into(interp, ns, args, "namespace");
  return ns;
}

Value g_dict(Interp& interp, CallArgs& args) {
  Value d = Value::dict();
  copy_mapping_into(interp, d, args, "dict");
  return d;
}

Value g_raise_exception(Interp&, CallArgs& args) {
  if (args.positional.size() != 1 || !args.keyword.empty()) {
    throw Fault("raise_exception takes exactly one argument");
  }
  throw Fault(to_str(args.positional[0]));
}

Value g_strftime_now(Interp& interp, CallArgs& args) {
  Args a("strftime_now", args, {"format"});
  const std::string format = str_arg(a.required(0, "strftime_now", "format"), "strftime_now");
  if (format.size() > 1024) throw Fault("strftime_now format too long");
  const std::time_t now = interp.options().now_unix_seconds
                              ? static_cast<std::time_t>(*interp.options().now_unix_seconds)
                              : std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  if (format.empty()) return Value::string("");
  std::string buffer(format.size() * 8 + 64, '\0');
  const size_t n = std::strftime(buffer.data(), buffer.size(), format.c_str(), &local);
  buffer.resize(n);
  return Value::string(std::move(buffer));
}

Value make_builtin(std::string name, Value (*fn)(Interp&, CallArgs&)) {
  auto callable = std::make_shared<Callable>();
  callable->name = std::move(name);
  callable->builtin = fn;
  return Value::callable(std::move(callable));
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  const auto& table = filter_table();
  const auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

TestFn find_test(std::string_view name) {
  const auto& table = test_table();
  const auto it = table.find(name);
  return it == table.end() ? nullptr : it->second;
}

bool has_method(const Value& object, std::string_view name) {
  switch (object.kind) {
    case Kind::kString:
      return in_list(
          name, {"strip",        "lstrip",      "rstrip",  "split",   "rsplit",    "splitlines",
                 "startswith",   "endswith",    "upper",   "lower",   "title",     "capitalize",
                 "swapcase",     "casefold",    "replace", "format",  "find",      "rfind",
                 "index",        "rindex",      "count",   "join",    "isdigit",   "isdecimal",
                 "isnumeric",    "isalpha",     "isalnum", "isspace", "islower",   "isupper",
                 "ljust",        "rjust",       "center",  "zfill",   "partition", "rpartition",
                 "removeprefix", "removesuffix"});
    case Kind::kList:
      return in_list(name, {"append", "extend", "insert", "pop", "remove", "reverse", "copy",
                            "index", "count"});
    case Kind::kTuple:
      return in_list(name, {"index", "count"});
    case Kind::kDict:
      return in_list(name,
                     {"items", "keys", "values", "get", "copy", "update", "pop", "setdefault"});
    case Kind::kLoop:
      return in_list(name, {"cycle", "changed"});
    default:
      return false;
  }
}

Value call_method(Interp& interp, const Value& object, std::string_view name, CallArgs& args) {
  switch (object.kind) {
    case Kind::kString:
      return string_method(interp, object.str(), name, args);
    case Kind::kList:
    case Kind::kTuple:
      return list_method(interp, object, name, args);
    case Kind::kDict:
      return dict_method(interp, object, name, args);
    case Kind::kLoop:
      return loop_method(object, name, args);
    default:
      throw Fault("'" + type_name(object) + "' object has no attribute '" + std::string(name) +
                  "'");
  }
}

void install_globals(Scope& globals) {
  globals.set("range", make_builtin("range", g_range));
  globals.set("namespace", make_builtin("namespace", g_namespace));
  globals.set("dict", make_builtin("dict", g_dict));
  globals.set("raise_exception", make_builtin("raise_exception", g_raise_exception));
  globals.set("strftime_now", make_builtin("strftime_now", g_strftime_now));
}

Value binary_arithmetic(Interp& interp, std::string_view op, const Value& a, const Value& b) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  int64_t ia = 0;
  int64_t ib = 0;
  const bool ints = as_integer(a, &ia) && as_integer(b, &ib);
  const bool numbers = a.is_number() && b.is_number();
  if (op == "+") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_add_overflow(ia, ib, &r)) throw Fault("integer overflow");
      return Value::integer(r);
    }
    if (numbers) return Value::number(as_double(a) + as_double(b));
    if (a.is_string() && b.is_string()) {
      interp.check_size(a.str().size() + b.str().size());
      interp.tick((a.str().size() + b.str().size()) / 64);
      return Value::string(a.str() + b.str());
    }
    if (a.is_sequence_like() && a.kind == b.kind) {
      std::vector<Value> values = a.items().values;
      const auto& more = b.items().values;
      interp.tick((values.size() + more.size()) / 16);
      values.insert(values.end(), more.begin(), more.end());
      return a.kind == Kind::kList ? Value::list(std::move(values))
                                   : Value::tuple(std::move(values));
    }
    if (a.is_string()) {
      throw Fault("can only concatenate str (not \"" + type_name(b) + "\") to str");
    }
    if (a.is_sequence_like()) {
      throw Fault("can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " +
                  type_name(a));
    }
    unsupported_operands(op, a, b);
  }
  if (op == "-") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_sub_overflow(ia, ib, &r)) throw Fault("integer overflow");
      return Value::integer(r);
    }
    if (numbers) return Value::number(as_double(a) - as_double(b));
    unsupported_operands(op, a, b);
  }
  if (op == "*") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_mul_overflow(ia, ib, &r)) throw Fault("integer overflow");
      return Value::integer(r);
    }
    if (numbers) return Value::number(as_double(a) * as_double(b));
    int64_t times = 0;
    if ((a.is_string() || a.is_sequence_like()) && as_integer(b, &times)) {
      return repeat_sequence(interp, a, times);
    }
    if ((b.is_string() || b.is_sequence_like()) && as_integer(a, &times)) {
      return repeat_sequence(interp, b, times);
    }
    unsupported_operands(op, a, b);
  }
  if (op == "/") {
    if (!numbers) unsupported_operands(op, a, b);
    if (as_double(b) == 0.0) throw Fault("division by zero");
    if (ints) return Value::number(static_cast<double>(ia) / static_cast<double>(ib));
    return Value::number(as_double(a) / as_double(b));
  }
  if (op == "//" || op == "%") {
    if (op == "%" && a.is_string()) return interp.make_string(percent_format(interp, a.str(), b));
    if (!numbers) unsupported_operands(op, a, b);
    if (ints) {
      if (ib == 0) {
        throw Fault(op == "//" ? "integer division or modulo by zero" : "integer modulo by zero");
      }
      if (ia == INT64_MIN && ib == -1) {
        if (op == "%") return Value::integer(0);
        throw Fault("integer overflow");
      }
      int64_t q = ia / ib;
      int64_t r = ia % ib;
      if (r != 0 && ((r < 0) != (ib < 0))) {
        q -= 1;
        r += ib;
      }
      return Value::integer(op == "//" ? q : r);
    }
    const double x = as_double(a);
    const double y = as_double(b);
    if (y == 0.0) throw Fault(op == "//" ? "float floor division by zero" : "float modulo");
    double mod = 0.0;
    const double div = float_floor_div(x, y, &mod);
    return Value::number(op == "//" ? div : mod);
  }
  if (op == "**") {
    if (!numbers) unsupported_operands(op, a, b);
    if (ints && ib >= 0) {
      int64_t result = 1;
      int64_t base = ia;
      int64_t exponent = ib;
      while (exponent > 0) {
        if (exponent & 1) {
          if (__builtin_mul_overflow(result, base, &result)) throw Fault("integer overflow");
        }
        exponent >>= 1;
        if (exponent > 0 && __builtin_mul_overflow(base, base, &base)) {
          throw Fault("integer overflow");
        }
      }
      return Value::integer(result);
    }
    const double x = as_double(a);
    const double y = as_double(b);
    if (x == 0.0 && y < 0) throw Fault("0.0 cannot be raised to a negative power");
    return Value::number(std::pow(x, y));
  }
  throw Fault("unknown operator '" + std::string(op) + "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind) {
    case Kind::kUndefined:
      return false;
    case Kind::kString:
      if (!item.is_string()) {
        throw Fault("'in <string>' requires string as left operand, not " + type_name(item));
      }
      return container.str().find(item.str()) != std::string::npos;
    case Kind::kList:
    case Kind::kTuple:
      for (const Value& v : container.items().values) {
        if (values_equal(v, item)) return true;
      }
      return false;
    case Kind::kDict:
      return container.entries().find(item) != nullptr;
    case Kind::kLoop:
      for (const Value& v : container.loop_state().items) {
        if (values_equal(v, item)) return true;
      }
      return false;
    default:
      throw Fault("argument of type '" + type_name(container) + "' is not iterable");
  }
}

}  // namespace ug::jinja
