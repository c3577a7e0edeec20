#include "chat/jinja_interp.h"

namespace ug::jinja {

// --- Scope -------------------------------------------------------------------------------------

const Value* Scope::lookup(std::string_view name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent.get()) {
    for (const auto& [key, value] : s->vars) {
      if (key == name) return &value;
    }
  }
  return nullptr;
}

void Scope::set(std::string_view name, Value value) {
  for (auto& [key, existing] : vars) {
    if (key == name) {
      existing = std::move(value);
      return;
    }
  }
  vars.emplace_back(std::string(name), std::move(value));
}

// --- Interp ------------------------------------------------------------------------------------

namespace {

class CallDepthGuard {
 public:
  CallDepthGuard(int* depth, int limit) : depth_(depth) {
    if (++*depth_ > limit) {
      --*depth_;
      throw Fault("maximum call depth (" + std::to_string(limit) + " nested macro calls) exceeded");
    }
  }
  ~CallDepthGuard() { --*depth_; }
  CallDepthGuard(const CallDepthGuard&) = delete;
  CallDepthGuard& operator=(const CallDepthGuard&) = delete;

 private:
  int* depth_;
};

Value bound_method(const Value& self, std::string_view name) {
  auto fn = std::make_shared<Callable>();
  fn->name = std::string(name);
  fn->self = self;
  fn->builtin = [self, method = std::string(name)](Interp& interp, CallArgs& args) {
    return call_method(interp, self, method, args);
  };
  return Value::callable(std::move(fn));
}

Value loop_attribute(const Value& loop_value, std::string_view name) {
  const LoopState& loop = loop_value.loop_state();
  const size_t n = loop.items.size();
  const auto i = static_cast<int64_t>(loop.index0);
  const auto len = static_cast<int64_t>(n);
  if (name == "index") return Value::integer(i + 1);
  if (name == "index0") return Value::integer(i);
  if (name == "revindex") return Value::integer(len - i);
  if (name == "revindex0") return Value::integer(len - i - 1);
  if (name == "first") return Value::boolean(i == 0);
  if (name == "last") return Value::boolean(i == len - 1);
  if (name == "length") return Value::integer(len);
  if (name == "depth") return Value::integer(loop.depth0 + 1);
  if (name == "depth0") return Value::integer(loop.depth0);
  if (name == "previtem") {
    return i > 0 ? loop.items[loop.index0 - 1] : Value::undefined("there is no previous item");
  }
  if (name == "nextitem") {
    return i + 1 < len ? loop.items[loop.index0 + 1] : Value::undefined("there is no next item");
  }
  if (has_method(loop_value, name)) return bound_method(loop_value, name);
  return Value::undefined("'loop' has no attribute '" + std::string(name) + "'");
}

// Python slice.indices(): the positions a slice selects in a sequence of `length` items.
std::vector<size_t> slice_positions(size_t length, const Value& start_v, const Value& stop_v,
                                    const Value& step_v) {
  const auto n = static_cast<int64_t>(length);
  const auto read = [](const Value& v, bool* given) -> int64_t {
    *given = false;
    if (v.is_none() || v.is_undefined()) return 0;
    int64_t i = 0;
    if (!as_integer(v, &i)) throw Fault("slice indices must be integers or None");
    *given = true;
    return i;
  };
  bool has_start = false;
  bool has_stop = false;
  bool has_step = false;
  int64_t start = read(start_v, &has_start);
  int64_t stop = read(stop_v, &has_stop);
  int64_t step = read(step_v, &has_step);
  if (!has_step) step = 1;
  if (step == 0) throw Fault("slice step cannot be zero");
  const auto clamp = [n, step](int64_t v) {
    if (v < 0) {
      v += n;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= n) {
      v = step < 0 ? n - 1 : n;
    }
    return v;
  };
  start = has_start ? clamp(start) : (step < 0 ? n - 1 : 0);
  stop = has_stop ? clamp(stop) : (step < 0 ? -1 : n);
  std::vector<size_t> positions;
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) positions.push_back(static_cast<size_t>(i));
  } else {
    for (int64_t i = start; i > stop; i += step) positions.push_back(static_cast<size_t>(i));
  }
  return positions;
}

}  // namespace

Interp::Interp(const Options& options) : options_(options), globals_(std::make_shared<Scope>()) {
  install_globals(*globals_);
}

Interp::~Interp() {
  release_stored();
}

std::string Interp::run(const Program& program, Value context) {
  root_ = std::make_shared<Scope>();
  root_->parent = globals_;
  if (context.kind == Kind::kDict) {
    for (const auto& [key, value] : context.entries().items) root_->set(to_str(key), value);
  }
  std::string out;
  exec_block(program.body, root_, out);
  root_->vars.clear();
  release_stored();
  return out;
}

void Interp::tick(uint64_t cost) {
  steps_ += cost;
  if (steps_ > options_.max_steps) {
    throw Fault("template exceeded the limit of " + std::to_string(options_.max_steps) +
                " evaluation steps");
  }
}

void Interp::check_size(size_t size) const {
  if (size > options_.max_output_bytes) {
    throw Fault("string of " + std::to_string(size) + " bytes exceeds the output limit of " +
                std::to_string(options_.max_output_bytes) + " bytes");
  }
}

void Interp::emit(std::string& out, std::string_view text) const {
  if (out.size() + text.size() > options_.max_output_bytes) {
    throw Fault("output exceeds the limit of " + std::to_string(options_.max_output_bytes) +
                " bytes");
  }
  out.append(text);
}

void Interp::note_store(const Value& container, const Value& value) {
  const bool holds_container = std::holds_alternative<ListPtr>(value.data) ||
                               std::holds_alternative<DictPtr>(value.data) ||
                               std::holds_alternative<CallablePtr>(value.data) ||
                               std::holds_alternative<LoopPtr>(value.data);
  if (!holds_container) return;
  if (const auto* list = std::get_if<ListPtr>(&container.data)) {
    auto& slot = stored_lists_[list->get()];
    if (slot.expired()) slot = *list;
  } else if (const auto* dict = std::get_if<DictPtr>(&container.data)) {
    auto& slot = stored_dicts_[dict->get()];
    if (slot.expired()) slot = *dict;
  }
}

void Interp::release_stored() {
  // Emptying every container that may be part of a cycle breaks all cycles; the moved-out
  // values are destroyed here (iteratively, see ListData).
  for (auto& [address, weak] : stored_lists_) {
    if (ListPtr list = weak.lock()) {
      std::vector<Value> doomed;
      doomed.swap(list->values);
    }
  }
  for (auto& [address, weak] : stored_dicts_) {
    if (DictPtr dict = weak.lock()) dict->clear();
  }
  stored_lists_.clear();
  stored_dicts_.clear();
}

// --- expressions -------------------------------------------------------------------------------

Value Interp::eval(const Expr& e, const ScopePtr& scope) {
  tick();
  try {
    return eval_inner(e, scope);
  } catch (Fault& f) {
    if (!f.located()) f.locate(e.line, e.column);
    throw;
  }
}

Value Interp::eval_inner(const Expr& e, const ScopePtr& scope) {
  switch (e.kind) {
    case ExprKind::kLiteral:
      return e.literal;
    case ExprKind::kName: {
      if (const Value* v = scope->lookup(e.name)) return *v;
      return Value::undefined("'" + e.name + "' is undefined");
    }
    case ExprKind::kList:
    case ExprKind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.children.size());
      for (const ExprPtr& child : e.children) items.push_back(eval(*child, scope));
      return e.kind == ExprKind::kList ? Value::list(std::move(items))
                                       : Value::tuple(std::move(items));
    }
    case ExprKind::kDict: {
      Value dict = Value::dict();
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value key = eval(*e.children[i], scope);
        if (key.kind == Kind::kList || key.kind == Kind::kDict || key.kind == Kind::kNamespace ||
            key.kind == Kind::kUndefined) {
          throw Fault("unhashable type: '" + type_name(key) + "'");
        }
        dict.entries().set(std::move(key), eval(*e.children[i + 1], scope));
      }
      return dict;
    }
    case ExprKind::kGetAttr:
      return getattr(eval(*e.children[0], scope), e.name);
    case ExprKind::kGetItem: {
      Value object = eval(*e.children[0], scope);
      return getitem(object, eval(*e.children[1], scope));
    }
    case ExprKind::kSlice: {
      Value object = eval(*e.children[0], scope);
      Value parts[3];
      for (size_t i = 0; i < 3; ++i) {
        if (e.children[i + 1]) parts[i] = eval(*e.children[i + 1], scope);
      }
      return slice(object, parts[0], parts[1], parts[2]);
    }
    case ExprKind::kCall:
      return eval_call(e, scope, nullptr);
    case ExprKind::kFilter: {
      Value input = e.children[0] ? eval(*e.children[0], scope) : block_input_;
      CallArgs args;
      eval_args(e, 1, scope, &args);
      return apply_filter(e.name, input, args);
    }
    case ExprKind::kTest: {
      Value input = eval(*e.children[0], scope);
      CallArgs args;
      eval_args(e, 1, scope, &args);
      return Value::boolean(apply_test(e.name, input, args) != e.negated);
    }
    case ExprKind::kUnary: {
      Value v = eval(*e.children[0], scope);
      if (e.name == "not") return Value::boolean(!truthy(v));
      if (v.is_undefined()) fail_undefined(v);
      int64_t i = 0;
      if (as_integer(v, &i)) {
        if (e.name == "+") return Value::integer(i);
        if (i == INT64_MIN) throw Fault("integer overflow");
        return Value::integer(-i);
      }
      if (v.kind == Kind::kFloat)
        return Value::number(e.name == "-" ? -v.as_float() : v.as_float());
      throw Fault("bad operand type for unary " + e.name + ": '" + type_name(v) + "'");
    }
    case ExprKind::kBinary:
      return eval_binary(e, scope);
    case ExprKind::kCompare:
      return eval_compare(e, scope);
    case ExprKind::kConditional: {
      if (truthy(eval(*e.children[1], scope))) return eval(*e.children[0], scope);
      if (e.children[2]) return eval(*e.children[2], scope);
      return Value::undefined("the inline if-expression on line " + std::to_string(e.line) +
                              " evaluated to false and no else section was defined");
    }
  }
  return Value::undefined();
}

Value Interp::eval_binary(const Expr& e, const ScopePtr& scope) {
  if (e.name == "and" || e.name == "or") {
    Value left = eval(*e.children[0], scope);
    if (truthy(left) == (e.name == "or")) return left;
    return eval(*e.children[1], scope);
  }
  Value left = eval(*e.children[0], scope);
  Value right = eval(*e.children[1], scope);
  if (e.name == "~") {
    std::string s = to_str(left);
    append_str(s, right);
    tick(s.size() / 64);
    return make_string(std::move(s));
  }
  return binary_arithmetic(*this, e.name, left, right);
}

Value Interp::eval_compare(const Expr& e, const ScopePtr& scope) {
  Value left = eval(*e.children[0], scope);
  for (size_t i = 0; i < e.compare_ops.size(); ++i) {
    Value right = eval(*e.children[i + 1], scope);
    const std::string& op = e.compare_ops[i];
    bool ok = false;
    if (op == "==") {
      ok = values_equal(left, right);
    } else if (op == "!=") {
      ok = !values_equal(left, right);
    } else if (op == "<") {
      ok = value_less(left, right);
    } else if (op == ">") {
      ok = value_less(right, left);
    } else if (op == "<=") {
      ok = value_less(left, right) || values_equal(left, right);
    } else if (op == ">=") {
      ok = value_less(right, left) || values_equal(left, right);
    } else if (op == "in") {
      ok = contains(right, left);
    } else {
      ok = !contains(right, left);
    }
    if (!ok) return Value::boolean(false);
    left = std::move(right);
  }
  return Value::boolean(true);
}

void Interp::eval_args(const Expr& e, size_t first, const ScopePtr& scope, CallArgs* args) {
  args->positional.reserve(e.children.size() - first);
  for (size_t i = first; i < e.children.size(); ++i) {
    args->positional.push_back(eval(*e.children[i], scope));
  }
  for (const auto& [name, expr] : e.kwargs) args->keyword.emplace_back(name, eval(*expr, scope));
}

Value Interp::eval_call(const Expr& e, const ScopePtr& scope, const Value* caller) {
  Value callee = eval(*e.children[0], scope);
  CallArgs args;
  eval_args(e, 1, scope, &args);
  if (caller != nullptr) args.keyword.emplace_back("caller", *caller);
  return call(callee, args);
}

Value Interp::call(const Value& callee, CallArgs& args) {
  switch (callee.kind) {
    case Kind::kUndefined:
      fail_undefined(callee);
    case Kind::kCallable: {
      const Callable& fn = callee.fn();
      if (fn.builtin) return fn.builtin(*this, args);
      return call_macro(fn, args);
    }
    case Kind::kLoop:
      return call_loop(callee.loop_state(), args);
    default:
      throw Fault("'" + type_name(callee) + "' object is not callable");
  }
}

Value Interp::call_macro(const Callable& macro, CallArgs& args) {
  CallDepthGuard guard(&call_depth_, options_.max_call_depth);
  const Stmt& m = *macro.stmt;
  ScopePtr parent = macro.closure.lock();
  if (!parent) parent = root_;
  auto scope = std::make_shared<Scope>();
  scope->parent = parent;
  std::vector<bool> used(args.keyword.size(), false);
  for (size_t i = 0; i < m.params.size(); ++i) {
    const Param& param = m.params[i];
    Value value;
    bool given = i < args.positional.size();
    if (given) value = args.positional[i];
    for (size_t k = 0; k < args.keyword.size(); ++k) {
      if (args.keyword[k].first != param.name) continue;
      if (given) {
        throw Fault("macro '" + macro.name + "' got multiple values for argument '" + param.name +
                    "'");
      }
      value = args.keyword[k].second;
      used[k] = true;
      given = true;
    }
    if (!given) {
      value = param.default_value
                  ? eval(*param.default_value, scope)
                  : Value::undefined("parameter '" + param.name + "' was not provided");
    }
    scope->set(param.name, std::move(value));
  }
  std::vector<Value> extra;
  for (size_t i = m.params.size(); i < args.positional.size(); ++i) {
    extra.push_back(args.positional[i]);
  }
  Value kwargs = Value::dict();
  for (size_t k = 0; k < args.keyword.size(); ++k) {
    if (used[k]) continue;
    if (args.keyword[k].first == "caller") {
      scope->set("caller", args.keyword[k].second);
    } else {
      kwargs.entries().set(Value::string(args.keyword[k].first), args.keyword[k].second);
    }
  }
  scope->set("varargs", Value::tuple(std::move(extra)));
  scope->set("kwargs", std::move(kwargs));
  std::string out;
  exec_block(m.body, scope, out);
  return Value::string(std::move(out));
}

Value Interp::call_loop(LoopState& loop, CallArgs& args) {
  if (loop.stmt == nullptr || !loop.stmt->recursive) {
    throw Fault("'loop' is only callable in loops marked 'recursive'");
  }
  if (args.positional.size() != 1 || !args.keyword.empty()) {
    throw Fault("loop() takes exactly one argument");
  }
  CallDepthGuard guard(&call_depth_, options_.max_call_depth);
  ScopePtr scope = loop.scope.lock();
  if (!scope) scope = root_;
  std::string out;
  run_loop(*loop.stmt, iterate(args.positional[0]), scope, loop.depth0 + 1, out);
  return Value::string(std::move(out));
}

Value Interp::apply_filter(std::string_view name, Value input, CallArgs& args) {
  FilterFn fn = find_filter(name);
  if (fn == nullptr) throw Fault("no filter named '" + std::string(name) + "'");
  return fn(*this, input, args);
}

bool Interp::apply_test(std::string_view name, const Value& input, CallArgs& args) {
  TestFn fn = find_test(name);
  if (fn == nullptr) throw Fault("no test named '" + std::string(name) + "'");
  return fn(*this, input, args);
}

Value Interp::getattr(const Value& object, std::string_view name) {
  switch (object.kind) {
    case Kind::kUndefined:
      fail_undefined(object);
    case Kind::kDict: {
      if (has_method(object, name)) return bound_method(object, name);
      if (const Value* v = object.entries().find(name)) return *v;
      break;
    }
    case Kind::kNamespace: {
      if (const Value* v = object.entries().find(name)) return *v;
      break;
    }
    case Kind::kLoop:
      return loop_attribute(object, name);
    default:
      if (has_method(object, name)) return bound_method(object, name);
      break;
  }
  return Value::undefined("'" + object_description(object) + "' has no attribute '" +
                          std::string(name) + "'");
}

Value Interp::getitem(const Value& object, const Value& key) {
  switch (object.kind) {
    case Kind::kUndefined:
      fail_undefined(object);
    case Kind::kDict: {
      if (const Value* v = object.entries().find(key)) return *v;
      if (key.is_string()) return getattr(object, key.str());
      return Value::undefined("dict object has no element " + repr(key));
    }
    case Kind::kList:
    case Kind::kTuple:
    case Kind::kString: {
      int64_t index = 0;
      if (!as_integer(key, &index)) {
        if (key.is_string()) return getattr(object, key.str());
        return Value::undefined(object_description(object) + " has no element " + repr(key));
      }
      if (object.kind == Kind::kString) {
        const std::string& s = object.str();
        if (is_ascii(s)) {
          const auto n = static_cast<int64_t>(s.size());
          if (index < 0) index += n;
          if (index < 0 || index >= n) break;
          return Value::string(std::string(1, s[static_cast<size_t>(index)]));
        }
        const std::vector<size_t> offsets = utf8_offsets(s);
        const auto n = static_cast<int64_t>(offsets.size() - 1);
        if (index < 0) index += n;
        if (index < 0 || index >= n) break;
        const auto i = static_cast<size_t>(index);
        return Value::string(s.substr(offsets[i], offsets[i + 1] - offsets[i]));
      }
      const auto& values = object.items().values;
      const auto n = static_cast<int64_t>(values.size());
      if (index < 0) index += n;
      if (index < 0 || index >= n) break;
      return values[static_cast<size_t>(index)];
    }
    case Kind::kNamespace:
    case Kind::kLoop:
      if (key.is_string()) return getattr(object, key.str());
      break;
    default:
      break;
  }
  return Value::undefined(object_description(object) + " has no element " + repr(key));
}

Value Interp::slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  if (object.is_undefined()) fail_undefined(object);
  if (object.kind == Kind::kString) {
    const std::string& s = object.str();
    std::string out;
    if (is_ascii(s)) {
      for (size_t i : slice_positions(s.size(), start, stop, step)) out.push_back(s[i]);
    } else {
      const std::vector<size_t> offsets = utf8_offsets(s);
      for (size_t i : slice_positions(offsets.size() - 1, start, stop, step)) {
        out.append(s, offsets[i], offsets[i + 1] - offsets[i]);
      }
    }
    tick(out.size() / 64);
    return Value::string(std::move(out));
  }
  if (object.kind == Kind::kList || object.kind == Kind::kTuple) {
    const auto& values = object.items().values;
    std::vector<Value> out;
    for (size_t i : slice_positions(values.size(), start, stop, step)) out.push_back(values[i]);
    tick(out.size() / 16);
    return object.kind == Kind::kList ? Value::list(std::move(out)) : Value::tuple(std::move(out));
  }
  return Value::undefined("'" + type_name(object) + "' object is not subscriptable");
}

std::vector<Value> Interp::iterate(const Value& v) {
  switch (v.kind) {
    case Kind::kUndefined:
      return {};
    case Kind::kList:
    case Kind::kTuple:
      tick(v.items().values.size() / 16);
      return v.items().values;
    case Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.entries().size());
      for (const auto& [key, value] : v.entries().items) keys.push_back(key);
      return keys;
    }
    case Kind::kString: {
      const std::string& s = v.str();
      std::vector<Value> chars;
      size_t pos = 0;
      while (pos < s.size()) {
        size_t next = pos;
        utf8_decode(s, pos, &next);
        chars.push_back(Value::string(s.substr(pos, next - pos)));
        pos = next;
      }
      tick(chars.size() / 16);
      return chars;
    }
    case Kind::kLoop:
      return v.loop_state().items;
    default:
      throw Fault("'" + type_name(v) + "' object is not iterable");
  }
}

Value Interp::lookup_path(const Value& object, std::string_view path) {
  Value current = object;
  size_t pos = 0;
  while (true) {
    const size_t dot = path.find('.', pos);
    const std::string_view part =
        path.substr(pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
    bool digits = !part.empty();
    for (char c : part) digits = digits && c >= '0' && c <= '9';
    if (digits && part.size() < 18) {
      current = getitem(current, Value::integer(std::stoll(std::string(part))));
    } else {
      current = getitem(current, Value::string(std::string(part)));
    }
    if (dot == std::string_view::npos || current.is_undefined()) return current;
    pos = dot + 1;
  }
}

// --- statements --------------------------------------------------------------------------------

Flow Interp::exec_block(const std::vector<Stmt>& body, const ScopePtr& scope, std::string& out) {
  for (const Stmt& s : body) {
    const Flow flow = exec(s, scope, out);
    if (flow != Flow::kNormal) return flow;
  }
  return Flow::kNormal;
}

Value Interp::filter_body(const Expr& filter, std::string body, const ScopePtr& scope) {
  Value saved = std::move(block_input_);
  block_input_ = make_string(std::move(body));
  Value result = eval(filter, scope);
  block_input_ = std::move(saved);
  return result;
}

Flow Interp::exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
  tick();
  try {
    switch (s.kind) {
      case StmtKind::kText:
        emit(out, s.text);
        return Flow::kNormal;
      case StmtKind::kOutput: {
        const Value v = eval(*s.expr, scope);
        if (v.is_string()) {
          emit(out, v.str());
        } else {
          std::string text;
          append_str(text, v);
          emit(out, text);
        }
        return Flow::kNormal;
      }
      case StmtKind::kIf:
        for (const Branch& branch : s.branches) {
          if (truthy(eval(*branch.condition, scope))) return exec_block(branch.body, scope, out);
        }
        return exec_block(s.else_body, scope, out);
      case StmtKind::kFor:
        return exec_for(s, scope, out);
      case StmtKind::kSet:
        assign(s.target, eval(*s.expr, scope), scope);
        return Flow::kNormal;
      case StmtKind::kSetBlock: {
        std::string body;
        exec_block(s.body, scope, body);
        Value value = s.filter ? filter_body(*s.filter, std::move(body), scope)
                               : Value::string(std::move(body));
        assign(s.target, std::move(value), scope);
        return Flow::kNormal;
      }
      case StmtKind::kMacro: {
        auto fn = std::make_shared<Callable>();
        fn->name = s.text;
        fn->stmt = &s;
        fn->closure = scope;
        scope->set(s.text, Value::callable(std::move(fn)));
        return Flow::kNormal;
      }
      case StmtKind::kCallBlock: {
        auto fn = std::make_shared<Callable>();
        fn->name = "caller";
        fn->stmt = &s;
        fn->closure = scope;
        const Value caller = Value::callable(std::move(fn));
        const Value result = eval_call(*s.expr, scope, &caller);
        emit(out, to_str(result));
        return Flow::kNormal;
      }
      case StmtKind::kFilterBlock: {
        std::string body;
        exec_block(s.body, scope, body);
        emit(out, to_str(filter_body(*s.filter, std::move(body), scope)));
        return Flow::kNormal;
      }
      case StmtKind::kBreak:
        return Flow::kBreak;
      case StmtKind::kContinue:
        return Flow::kContinue;
      case StmtKind::kDo:
        eval(*s.expr, scope);
        return Flow::kNormal;
      case StmtKind::kWith: {
        auto inner = std::make_shared<Scope>();
        inner->parent = scope;
        for (const auto& [target, expr] : s.assignments) assign(target, eval(*expr, scope), inner);
        return exec_block(s.body, inner, out);
      }
      case StmtKind::kScope:
        return exec_block(s.body, scope, out);
    }
  } catch (Fault& f) {
    if (!f.located()) f.locate(s.line, s.column);
    throw;
  }
  return Flow::kNormal;
}

Flow Interp::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
  std::vector<Value> items = iterate(eval(*s.expr, scope));
  if (s.condition) {
    auto filter_scope = std::make_shared<Scope>();
    filter_scope->parent = scope;
    std::vector<Value> kept;
    for (Value& item : items) {
      tick();
      filter_scope->vars.clear();
      assign(s.target, item, filter_scope);
      if (truthy(eval(*s.condition, filter_scope))) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) return exec_block(s.else_body, scope, out);
  run_loop(s, std::move(items), scope, 0, out);
  return Flow::kNormal;
}

void Interp::run_loop(const Stmt& s, std::vector<Value> items, const ScopePtr& scope, int depth0,
                      std::string& out) {
  auto state = std::make_shared<LoopState>();
  state->items = std::move(items);
  state->depth0 = depth0;
  state->stmt = &s;
  state->scope = scope;
  const Value loop_value = Value::loop(state);
  auto iteration = std::make_shared<Scope>();
  iteration->parent = scope;
  for (size_t i = 0; i < state->items.size(); ++i) {
    tick();
    // Each iteration starts from a fresh frame: jinja2 does not carry {% set %} across iterations.
    iteration->vars.clear();
    state->index0 = i;
    assign(s.target, state->items[i], iteration);
    iteration->set("loop", loop_value);
    if (exec_block(s.body, iteration, out) == Flow::kBreak) break;
  }
  iteration->vars.clear();
}

void Interp::assign(const Target& target, Value value, const ScopePtr& scope) {
  if (!target.attribute.empty()) {
    const Value* found = scope->lookup(target.names[0]);
    if (found == nullptr || found->kind != Kind::kNamespace) {
      throw Fault("cannot assign attribute on non-namespace object");
    }
    const Value ns = *found;
    note_store(ns, value);
    ns.entries().set(Value::string(target.attribute), std::move(value));
    return;
  }
  if (!target.is_tuple) {
    scope->set(target.names[0], std::move(value));
    return;
  }
  if (value.kind != Kind::kList && value.kind != Kind::kTuple && value.kind != Kind::kString &&
      value.kind != Kind::kDict) {
    throw Fault("cannot unpack non-iterable " + type_name(value) + " object");
  }
  std::vector<Value> parts = iterate(value);
  const size_t expected = target.names.size();
  if (parts.size() < expected) {
    throw Fault("not enough values to unpack (expected " + std::to_string(expected) + ", got " +
                std::to_string(parts.size()) + ")");
  }
  if (parts.size() > expected) {
    throw Fault("too many values to unpack (expected " + std::to_string(expected) + ")");
  }
  for (size_t i = 0; i < expected; ++i) scope->set(target.names[i], std::move(parts[i]));
}

}  // namespace ug::jinja
