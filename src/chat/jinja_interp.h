// Internal to the Jinja interpreter: scopes, callables, the evaluator, and the builtin tables
// (filters, tests, methods, globals) it dispatches to.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "chat/jinja.h"
#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"

namespace ug::jinja {

// Variables of one frame (template top level, loop iteration, macro call, with block). Lookups walk
// to the parent; assignments always go to the innermost frame, as in jinja2.
struct Scope {
  std::vector<std::pair<std::string, Value>> vars;
  std::shared_ptr<Scope> parent;

  const Value* lookup(std::string_view name) const;
  void set(std::string_view name, Value value);
};
using ScopePtr = std::shared_ptr<Scope>;

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

class Interp;
using BuiltinFn = std::function<Value(Interp&, CallArgs&)>;

// Builtin function / bound method (builtin set) or macro / call-block caller (stmt set).
struct Callable {
  std::string name;
  BuiltinFn builtin;
  Value self;  // bound object of a method, so cycle checks can see through it
  const Stmt* stmt = nullptr;
  std::weak_ptr<Scope> closure;  // weak: a scope holding its own macros must not leak
};

// jinja2 LoopContext.
struct LoopState {
  std::vector<Value> items;
  size_t index0 = 0;
  int depth0 = 0;
  bool has_changed_value = false;
  Value changed_value;
  const Stmt* stmt = nullptr;  // for recursive loops: loop(items) re-enters this statement
  std::weak_ptr<Scope> scope;  // the scope the loop statement runs in
};

enum class Flow : uint8_t { kNormal, kBreak, kContinue };

class Interp {
 public:
  explicit Interp(const Options& options);
  ~Interp();

  std::string run(const Program& program, Value context);

  // --- evaluation, used by the builtins ---
  const Options& options() const { return options_; }
  Value call(const Value& callee, CallArgs& args);
  Value apply_filter(std::string_view name, Value input, CallArgs& args);
  bool apply_test(std::string_view name, const Value& input, CallArgs& args);
  Value getattr(const Value& object, std::string_view name);
  Value getitem(const Value& object, const Value& key);
  // Python iter(): list/tuple items, dict keys, string characters; Undefined is empty.
  std::vector<Value> iterate(const Value& v);
  // Attribute path "a.b.0" as used by map/selectattr/sort/...
  Value lookup_path(const Value& object, std::string_view path);

  void tick(uint64_t cost = 1);
  // Throws if a string of `size` bytes would exceed max_output_bytes.
  void check_size(size_t size) const;
  Value make_string(std::string s) const {
    check_size(s.size());
    return Value::string(std::move(s));
  }
  // Call before storing `value` into the list/dict/namespace `container`. Storing containers
  // into containers is the only way templates can build reference cycles (l.append(l)); such
  // containers are remembered and emptied when the render ends, so cycles cannot leak.
  void note_store(const Value& container, const Value& value);

 private:
  const Options& options_;
  uint64_t steps_ = 0;
  int call_depth_ = 0;
  ScopePtr globals_;
  ScopePtr root_;
  // Rendered body of the innermost {% filter %} / {% set x | f %} block being filtered.
  Value block_input_;
  // Containers that received containers (see note_store), by address; expired entries are
  // replaced when the address is reused.
  std::unordered_map<const void*, std::weak_ptr<ListData>> stored_lists_;
  std::unordered_map<const void*, std::weak_ptr<DictData>> stored_dicts_;
  void release_stored();

  Value eval(const Expr& e, const ScopePtr& scope);
  Value eval_inner(const Expr& e, const ScopePtr& scope);
  Value eval_binary(const Expr& e, const ScopePtr& scope);
  Value eval_compare(const Expr& e, const ScopePtr& scope);
  Value eval_call(const Expr& e, const ScopePtr& scope, const Value* caller);
  void eval_args(const Expr& e, size_t first, const ScopePtr& scope, CallArgs* args);
  Value slice(const Value& object, const Value& start, const Value& stop, const Value& step);

  Flow exec_block(const std::vector<Stmt>& body, const ScopePtr& scope, std::string& out);
  Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out);
  Flow exec_for(const Stmt& s, const ScopePtr& scope, std::string& out);
  void run_loop(const Stmt& s, std::vector<Value> items, const ScopePtr& scope, int depth0,
                std::string& out);
  void assign(const Target& target, Value value, const ScopePtr& scope);
  void emit(std::string& out, std::string_view text) const;
  Value call_macro(const Callable& macro, CallArgs& args);
  Value call_loop(LoopState& loop, CallArgs& args);
  Value filter_body(const Expr& filter, std::string body, const ScopePtr& scope);
};

// --- builtins (jinja_builtins.cpp) ---
using FilterFn = Value (*)(Interp&, const Value& input, CallArgs& args);
using TestFn = bool (*)(Interp&, const Value& input, CallArgs& args);
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);
// Python methods of str / list / dict values (and loop.cycle / loop.changed).
bool has_method(const Value& object, std::string_view name);
Value call_method(Interp& interp, const Value& object, std::string_view name, CallArgs& args);
// range, namespace, dict, raise_exception, strftime_now.
void install_globals(Scope& globals);

// Python arithmetic on two values (op is "+", "-", "*", "/", "//", "%", "**").
Value binary_arithmetic(Interp& interp, std::string_view op, const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);

}  // namespace ug::jinja
