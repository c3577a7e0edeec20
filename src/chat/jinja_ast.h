// Syntax tree of a parsed Jinja template. Plain structs: one Expr and one Stmt type whose `kind`
// says which fields are in use.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_value.h"

namespace ug::jinja {

enum class ExprKind : uint8_t {
  kLiteral,      // literal
  kName,         // name
  kList,         // children = items
  kTuple,        // children = items
  kDict,         // children = key0, value0, key1, value1, ...
  kGetAttr,      // children[0] = object, name = attribute  (a.b)
  kGetItem,      // children[0] = object, children[1] = key  (a[b])
  kSlice,        // children[0] = object, children[1..3] = start/stop/step (null when omitted)
  kCall,         // children[0] = callee, children[1..] = positional args, kwargs
  kFilter,       // children[0] = input (null: the body of a filter block), name, args, kwargs
  kTest,         // children[0] = input, name, args, kwargs, negated
  kUnary,        // op in {"-", "+", "not"}, children[0]
  kBinary,       // op in {"+","-","*","/","//","%","**","~","and","or"}, children[0..1]
  kCompare,      // children[0] = first operand, compare_ops[i] applies to children[i + 1]
  kConditional,  // children = then, condition, else (null: undefined)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  int line = 0;
  int column = 0;
  Value literal;
  std::string name;  // name / attribute / filter / test / operator
  std::vector<ExprPtr> children;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> compare_ops;  // "==", "!=", "<", "<=", ">", ">=", "in", "notin"
  bool negated = false;
};

// Assignment target of set/for/with: a name, a tuple of names, or namespace attribute.
struct Target {
  std::vector<std::string> names;  // one name, or several for tuple unpacking
  bool is_tuple = false;
  std::string attribute;  // non-empty: names[0].attribute (namespace assignment)
};

enum class StmtKind : uint8_t {
  kText,         // text
  kOutput,       // {{ expr }}
  kIf,           // branches (condition, body), else_body
  kFor,          // target, expr (iterable), condition (loop filter), recursive, body, else_body
  kSet,          // target, expr
  kSetBlock,     // target, body, filter (may be null)
  kMacro,        // name, params, body
  kCallBlock,    // params (caller's), expr (the call), body (caller's body)
  kFilterBlock,  // filter, body
  kBreak,
  kContinue,
  kDo,     // expr
  kWith,   // assignments, body
  kScope,  // body (generation blocks: rendered transparently)
};

struct Stmt;

struct Branch {
  ExprPtr condition;
  std::vector<Stmt> body;
};

struct Param {
  std::string name;
  ExprPtr default_value;  // null: required (undefined when not passed)
};

struct Stmt {
  StmtKind kind = StmtKind::kText;
  int line = 0;
  int column = 0;
  std::string text;  // kText; kMacro: macro name
  ExprPtr expr;
  ExprPtr condition;  // kFor loop filter
  ExprPtr filter;     // kSetBlock / kFilterBlock: filter chain whose input is the rendered body
  Target target;
  bool recursive = false;
  std::vector<Branch> branches;
  std::vector<Stmt> body;
  std::vector<Stmt> else_body;
  std::vector<Param> params;
  std::vector<std::pair<Target, ExprPtr>> assignments;
};

struct Program {
  std::vector<Stmt> body;
};

}  // namespace ug::jinja
