#include "chat/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

namespace ug::jinja {
namespace {

// Nesting beyond this (parentheses, unary operators, blocks) is refused so that the recursive
// parser and evaluator stay far from the native stack limit.
constexpr int kMaxParseDepth = 128;

std::string describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::kText:
      return "template data";
    case TokenKind::kVarBegin:
      return "begin of print statement";
    case TokenKind::kVarEnd:
      return "end of print statement";
    case TokenKind::kBlockBegin:
      return "begin of statement block";
    case TokenKind::kBlockEnd:
      return "end of statement block";
    case TokenKind::kString:
      return "string";
    case TokenKind::kInteger:
      return "integer";
    case TokenKind::kFloat:
      return "float";
    case TokenKind::kEnd:
      return "end of template";
    default:
      return token.text;
  }
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  Program parse_program() {
    Program program;
    std::string end_tag;
    program.body = parse_body({}, &end_tag);
    return program;
  }

 private:
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::vector<std::string> open_blocks_;  // for "looking for endfor" messages

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : parser(p) {
      if (++parser->depth_ > kMaxParseDepth) {
        parser->fail("template nested more than " + std::to_string(kMaxParseDepth) +
                     " levels deep");
      }
    }
    ~DepthGuard() { --parser->depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;
    Parser* parser;
  };

  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek(size_t n = 1) const { return tokens_[std::min(pos_ + n, tokens_.size() - 1)]; }
  const Token& advance() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }

  [[noreturn]] void fail(const std::string& message) const { fail_at(cur(), message); }
  [[noreturn]] void fail_at(const Token& at, const std::string& message) const {
    throw Fault(message, at.line, at.column);
  }

  static bool is_op(const Token& t, std::string_view op) {
    return t.kind == TokenKind::kOperator && t.text == op;
  }
  static bool is_name(const Token& t, std::string_view name) {
    return t.kind == TokenKind::kName && t.text == name;
  }
  bool at_op(std::string_view op) const { return is_op(cur(), op); }
  bool at_name(std::string_view name) const { return is_name(cur(), name); }

  void expect_op(std::string_view op) {
    if (!at_op(op)) fail("expected '" + std::string(op) + "', got '" + describe(cur()) + "'");
    advance();
  }
  std::string expect_name() {
    if (cur().kind != TokenKind::kName) fail("expected a name, got '" + describe(cur()) + "'");
    return advance().text;
  }
  void expect_name(std::string_view name) {
    if (!at_name(name)) {
      fail("expected '" + std::string(name) + "', got '" + describe(cur()) + "'");
    }
    advance();
  }
  void expect_block_end() {
    if (cur().kind != TokenKind::kBlockEnd) {
      fail("expected end of statement block, got '" + describe(cur()) + "'");
    }
    advance();
  }

  static ExprPtr make(ExprKind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }

  // --- statements ------------------------------------------------------------------------------

  // Parses until one of `end_tags` opens a block ({% endfor %}, {% else %}, ...). On return the
  // current token is that tag's name, stored in *found.
  std::vector<Stmt> parse_body(std::initializer_list<std::string_view> end_tags,
                               std::string* found) {
    std::vector<Stmt> body;
    while (true) {
      const Token& t = cur();
      switch (t.kind) {
        case TokenKind::kText: {
          Stmt s;
          s.kind = StmtKind::kText;
          s.line = t.line;
          s.column = t.column;
          s.text = t.text;
          body.push_back(std::move(s));
          advance();
          break;
        }
        case TokenKind::kVarBegin: {
          Stmt s;
          s.kind = StmtKind::kOutput;
          s.line = t.line;
          s.column = t.column;
          advance();
          s.expr = parse_tuple(true, false, {});
          if (cur().kind != TokenKind::kVarEnd) {
            fail("expected end of print statement, got '" + describe(cur()) + "'");
          }
          advance();
          body.push_back(std::move(s));
          break;
        }
        case TokenKind::kBlockBegin: {
          const Token& name = peek();
          if (name.kind == TokenKind::kName &&
              std::find(end_tags.begin(), end_tags.end(), name.text) != end_tags.end()) {
            advance();
            *found = name.text;
            return body;
          }
          advance();
          body.push_back(parse_statement());
          break;
        }
        case TokenKind::kEnd: {
          if (end_tags.size() == 0) return body;
          std::string wanted;
          for (std::string_view tag : end_tags) {
            wanted += (wanted.empty() ? "'" : " or '") + std::string(tag) + "'";
          }
          fail("unexpected end of template, looking for " + wanted +
               (open_blocks_.empty() ? std::string() : " to close '" + open_blocks_.back() + "'"));
        }
        default:
          fail("unexpected '" + describe(t) + "'");
      }
    }
  }

  Stmt parse_statement() {
    DepthGuard guard(this);
    const Token& t = cur();
    if (t.kind != TokenKind::kName) fail("expected a tag name, got '" + describe(t) + "'");
    Stmt s;
    s.line = t.line;
    s.column = t.column;
    const std::string tag = t.text;
    advance();
    open_blocks_.push_back(tag);
    if (tag == "if") {
      parse_if(&s);
    } else if (tag == "for") {
      parse_for(&s);
    } else if (tag == "set") {
      parse_set(&s);
    } else if (tag == "macro") {
      parse_macro(&s);
    } else if (tag == "call") {
      parse_call_block(&s);
    } else if (tag == "filter") {
      s.kind = StmtKind::kFilterBlock;
      s.filter = parse_filter_chain(nullptr, cur());
      expect_block_end();
      s.body = parse_block_body("endfilter");
    } else if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) fail_at(t, "'" + tag + "' outside of a loop");
      s.kind = tag == "break" ? StmtKind::kBreak : StmtKind::kContinue;
      expect_block_end();
    } else if (tag == "do") {
      s.kind = StmtKind::kDo;
      s.expr = parse_tuple(true, false, {});
      expect_block_end();
    } else if (tag == "with") {
      parse_with(&s);
    } else if (tag == "generation") {
      // Hugging Face's AssistantTracker extension: marks assistant text, renders transparently.
      s.kind = StmtKind::kScope;
      expect_block_end();
      s.body = parse_block_body("endgeneration");
    } else if (tag == "include" || tag == "import" || tag == "from" || tag == "extends" ||
               tag == "block") {
      fail_at(t, "tag '" + tag + "' is not supported in chat templates");
    } else {
      fail_at(t, "unknown tag '" + tag + "'");
    }
    open_blocks_.pop_back();
    return s;
  }

  // Body up to {% <end_tag> %}; consumes the end tag.
  std::vector<Stmt> parse_block_body(std::string_view end_tag) {
    std::string found;
    std::vector<Stmt> body = parse_body({end_tag}, &found);
    advance();
    expect_block_end();
    return body;
  }

  void parse_if(Stmt* s) {
    s->kind = StmtKind::kIf;
    std::string found;
    while (true) {
      Branch branch;
      branch.condition = parse_tuple(false, false, {});
      expect_block_end();
      branch.body = parse_body({"elif", "else", "endif"}, &found);
      advance();
      s->branches.push_back(std::move(branch));
      if (found != "elif") break;
    }
    if (found == "else") {
      expect_block_end();
      s->else_body = parse_body({"endif"}, &found);
      advance();
    }
    expect_block_end();
  }

  void parse_for(Stmt* s) {
    s->kind = StmtKind::kFor;
    s->target = parse_assign_target(false);
    expect_name("in");
    s->expr = parse_tuple(false, false, {"recursive"});
    if (at_name("if")) {
      advance();
      s->condition = parse_expression(true);
    }
    if (at_name("recursive")) {
      advance();
      s->recursive = true;
    }
    expect_block_end();
    std::string found;
    ++loop_depth_;
    s->body = parse_body({"endfor", "else"}, &found);
    --loop_depth_;
    advance();
    if (found == "else") {
      expect_block_end();
      s->else_body = parse_body({"endfor"}, &found);
      advance();
    }
    expect_block_end();
  }

  void parse_set(Stmt* s) {
    s->target = parse_assign_target(true);
    if (at_op("=")) {
      advance();
      s->kind = StmtKind::kSet;
      s->expr = parse_tuple(true, false, {});
      expect_block_end();
      return;
    }
    if (s->target.is_tuple) fail("block assignment needs a single name");
    s->kind = StmtKind::kSetBlock;
    if (at_op("|")) {
      advance();
      s->filter = parse_filter_chain(nullptr, cur());
    }
    expect_block_end();
    s->body = parse_block_body("endset");
  }

  void parse_macro(Stmt* s) {
    s->kind = StmtKind::kMacro;
    s->text = expect_name();
    s->params = parse_signature();
    expect_block_end();
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_block_body("endmacro");
    loop_depth_ = saved_loop_depth;
  }

  void parse_call_block(Stmt* s) {
    s->kind = StmtKind::kCallBlock;
    if (at_op("(")) s->params = parse_signature();
    const Token& at = cur();
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::kCall) fail_at(at, "expected a call in the call block");
    expect_block_end();
    const int saved_loop_depth = loop_depth_;
    loop_depth_ = 0;
    s->body = parse_block_body("endcall");
    loop_depth_ = saved_loop_depth;
  }

  void parse_with(Stmt* s) {
    s->kind = StmtKind::kWith;
    while (cur().kind != TokenKind::kBlockEnd) {
      if (!s->assignments.empty()) expect_op(",");
      Target target = parse_assign_target(false);
      expect_op("=");
      s->assignments.emplace_back(std::move(target), parse_expression(true));
    }
    expect_block_end();
    s->body = parse_block_body("endwith");
  }

  std::vector<Param> parse_signature() {
    std::vector<Param> params;
    expect_op("(");
    while (!at_op(")")) {
      if (!params.empty()) expect_op(",");
      if (at_op(")")) break;
      Param p;
      p.name = expect_name();
      if (at_op("=")) {
        advance();
        p.default_value = parse_expression(true);
      }
      params.push_back(std::move(p));
    }
    expect_op(")");
    return params;
  }

  static bool is_reserved_name(std::string_view n) {
    return n == "true" || n == "false" || n == "none" || n == "True" || n == "False" ||
           n == "None" || n == "loop" || n == "in" || n == "not" || n == "and" || n == "or" ||
           n == "is" || n == "if" || n == "else";
  }

  std::string assignable_name() {
    const Token& t = cur();
    const std::string name = expect_name();
    if (is_reserved_name(name) && name != "loop") fail_at(t, "cannot assign to '" + name + "'");
    return name;
  }

  Target parse_assign_target(bool allow_attribute) {
    Target target;
    if (allow_attribute && cur().kind == TokenKind::kName && is_op(peek(), ".")) {
      target.names.push_back(assignable_name());
      advance();
      target.attribute = expect_name();
      return target;
    }
    const bool parenthesized = at_op("(");
    if (parenthesized) advance();
    target.names.push_back(assignable_name());
    while (at_op(",")) {
      advance();
      target.is_tuple = true;
      if (cur().kind != TokenKind::kName || is_name(cur(), "in")) break;
      target.names.push_back(assignable_name());
    }
    if (parenthesized) {
      expect_op(")");
      target.is_tuple = true;
    }
    return target;
  }

  // --- expressions -----------------------------------------------------------------------------

  bool is_tuple_end(std::initializer_list<std::string_view> extra_end_names) const {
    const Token& t = cur();
    if (t.kind == TokenKind::kVarEnd || t.kind == TokenKind::kBlockEnd || is_op(t, ")")) {
      return true;
    }
    if (t.kind == TokenKind::kName) {
      for (std::string_view n : extra_end_names) {
        if (t.text == n) return true;
      }
    }
    return false;
  }

  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens,
                      std::initializer_list<std::string_view> extra_end_names) {
    const Token& start = cur();
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) expect_op(",");
      if (is_tuple_end(extra_end_names)) break;
      items.push_back(parse_expression(with_condexpr));
      if (at_op(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) fail("expected an expression, got '" + describe(cur()) + "'");
    }
    ExprPtr tuple = make(ExprKind::kTuple, start);
    tuple->children = std::move(items);
    return tuple;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    DepthGuard guard(this);
    ExprPtr expr = parse_or();
    while (at_name("if")) {
      const Token& at = advance();
      ExprPtr condition = parse_or();
      ExprPtr otherwise;
      if (at_name("else")) {
        advance();
        otherwise = parse_condexpr();
      }
      ExprPtr node = make(ExprKind::kConditional, at);
      node->children.push_back(std::move(expr));
      node->children.push_back(std::move(condition));
      node->children.push_back(std::move(otherwise));
      expr = std::move(node);
    }
    return expr;
  }

  ExprPtr binary(const Token& at, std::string op, ExprPtr left, ExprPtr right) {
    ExprPtr node = make(ExprKind::kBinary, at);
    node->name = std::move(op);
    node->children.push_back(std::move(left));
    node->children.push_back(std::move(right));
    return node;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (at_name("or")) {
      const Token& at = advance();
      left = binary(at, "or", std::move(left), parse_and());
    }
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (at_name("and")) {
      const Token& at = advance();
      left = binary(at, "and", std::move(left), parse_not());
    }
    return left;
  }

  ExprPtr parse_not() {
    DepthGuard guard(this);
    if (at_name("not")) {
      const Token& at = advance();
      ExprPtr node = make(ExprKind::kUnary, at);
      node->name = "not";
      node->children.push_back(parse_not());
      return node;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const Token& start = cur();
    ExprPtr first = parse_math1();
    ExprPtr node;
    while (true) {
      std::string op;
      const Token& t = cur();
      if (t.kind == TokenKind::kOperator && (t.text == "==" || t.text == "!=" || t.text == "<" ||
                                             t.text == "<=" || t.text == ">" || t.text == ">=")) {
        op = t.text;
        advance();
      } else if (is_name(t, "in")) {
        op = "in";
        advance();
      } else if (is_name(t, "not") && is_name(peek(), "in")) {
        op = "notin";
        advance();
        advance();
      } else {
        break;
      }
      if (!node) {
        node = make(ExprKind::kCompare, start);
        node->children.push_back(std::move(first));
      }
      node->compare_ops.push_back(op);
      node->children.push_back(parse_math1());
    }
    return node ? std::move(node) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (at_op("+") || at_op("-")) {
      const Token& at = advance();
      left = binary(at, at.text, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (at_op("~")) {
      const Token& at = advance();
      left = binary(at, "~", std::move(left), parse_math2());
    }
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      const Token& at = advance();
      left = binary(at, at.text, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (at_op("**")) {
      const Token& at = advance();
      left = binary(at, "**", std::move(left), parse_unary(true));
    }
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    DepthGuard guard(this);
    ExprPtr node;
    if (at_op("-") || at_op("+")) {
      const Token& at = advance();
      node = make(ExprKind::kUnary, at);
      node->name = at.text;
      node->children.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr literal(const Token& at, Value v) {
    ExprPtr node = make(ExprKind::kLiteral, at);
    node->literal = std::move(v);
    return node;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    switch (t.kind) {
      case TokenKind::kName: {
        advance();
        if (t.text == "true" || t.text == "True") return literal(t, Value::boolean(true));
        if (t.text == "false" || t.text == "False") return literal(t, Value::boolean(false));
        if (t.text == "none" || t.text == "None") return literal(t, Value::none());
        ExprPtr node = make(ExprKind::kName, t);
        node->name = t.text;
        return node;
      }
      case TokenKind::kString: {
        std::string text = advance().text;
        while (cur().kind == TokenKind::kString) text += advance().text;  // "a" "b" == "ab"
        return literal(t, Value::string(std::move(text)));
      }
      case TokenKind::kInteger:
        advance();
        return literal(t, Value::integer(t.integer));
      case TokenKind::kFloat:
        advance();
        return literal(t, Value::number(t.number));
      case TokenKind::kOperator:
        if (t.text == "(") {
          advance();
          ExprPtr inner = parse_tuple(true, true, {});
          expect_op(")");
          return inner;
        }
        if (t.text == "[") return parse_list();
        if (t.text == "{") return parse_dict();
        break;
      default:
        break;
    }
    fail("unexpected '" + describe(t) + "'");
  }

  ExprPtr parse_list() {
    ExprPtr node = make(ExprKind::kList, advance());
    while (!at_op("]")) {
      if (!node->children.empty()) expect_op(",");
      if (at_op("]")) break;
      node->children.push_back(parse_expression(true));
    }
    expect_op("]");
    return node;
  }

  ExprPtr parse_dict() {
    ExprPtr node = make(ExprKind::kDict, advance());
    while (!at_op("}")) {
      if (!node->children.empty()) expect_op(",");
      if (at_op("}")) break;
      node->children.push_back(parse_expression(true));
      expect_op(":");
      node->children.push_back(parse_expression(true));
    }
    expect_op("}");
    return node;
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (at_op(".")) {
        const Token& at = advance();
        if (cur().kind == TokenKind::kName) {
          ExprPtr attr = make(ExprKind::kGetAttr, at);
          attr->name = advance().text;
          attr->children.push_back(std::move(node));
          node = std::move(attr);
        } else if (cur().kind == TokenKind::kInteger) {
          ExprPtr item = make(ExprKind::kGetItem, at);
          item->children.push_back(std::move(node));
          item->children.push_back(literal(cur(), Value::integer(cur().integer)));
          advance();
          node = std::move(item);
        } else {
          fail("expected an attribute name after '.', got '" + describe(cur()) + "'");
        }
      } else if (at_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (at_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr object) {
    const Token& at = advance();  // '['
    ExprPtr start;
    if (at_op("]") || at_op(",")) {
      // a[] and a[x, y] index with a tuple, as in jinja2.
      ExprPtr key = make(ExprKind::kTuple, at);
      while (!at_op("]")) {
        if (!key->children.empty()) expect_op(",");
        if (at_op("]")) break;
        key->children.push_back(parse_expression(true));
      }
      advance();
      ExprPtr item = make(ExprKind::kGetItem, at);
      item->children.push_back(std::move(object));
      item->children.push_back(std::move(key));
      return item;
    }
    if (!at_op(":")) start = parse_expression(true);
    if (at_op(",")) {
      ExprPtr key = make(ExprKind::kTuple, at);
      key->children.push_back(std::move(start));
      while (at_op(",")) {
        advance();
        if (at_op("]")) break;
        key->children.push_back(parse_expression(true));
      }
      start = std::move(key);
    }
    if (at_op("]")) {
      advance();
      ExprPtr item = make(ExprKind::kGetItem, at);
      item->children.push_back(std::move(object));
      item->children.push_back(std::move(start));
      return item;
    }
    expect_op(":");
    ExprPtr slice = make(ExprKind::kSlice, at);
    slice->children.push_back(std::move(object));
    slice->children.push_back(std::move(start));
    ExprPtr stop;
    ExprPtr step;
    if (!at_op("]") && !at_op(":")) stop = parse_expression(true);
    if (at_op(":")) {
      advance();
      if (!at_op("]")) step = parse_expression(true);
    }
    expect_op("]");
    slice->children.push_back(std::move(stop));
    slice->children.push_back(std::move(step));
    return slice;
  }

  // Arguments of a call/filter/test: positional expressions then name=expr keywords.
  void parse_call_args(Expr* node) {
    expect_op("(");
    while (!at_op(")")) {
      if (node->children.size() > 1 || !node->kwargs.empty()) {
        expect_op(",");
        if (at_op(")")) break;
      }
      if (at_op("*") || at_op("**")) fail("*args / **kwargs in calls are not supported");
      if (cur().kind == TokenKind::kName && is_op(peek(), "=")) {
        std::string key = advance().text;
        advance();
        node->kwargs.emplace_back(std::move(key), parse_expression(true));
      } else {
        if (!node->kwargs.empty()) fail("positional argument follows keyword argument");
        node->children.push_back(parse_expression(true));
      }
    }
    expect_op(")");
  }

  ExprPtr parse_call(ExprPtr callee) {
    ExprPtr node = make(ExprKind::kCall, cur());
    node->children.push_back(std::move(callee));
    parse_call_args(node.get());
    return node;
  }

  std::string parse_dotted_name() {
    std::string name = expect_name();
    while (at_op(".")) {
      advance();
      name += "." + expect_name();
    }
    return name;
  }

  // One filter application "name(args)" on `input` (null for filter blocks).
  ExprPtr parse_filter(ExprPtr input, const Token& at) {
    ExprPtr node = make(ExprKind::kFilter, at);
    node->name = parse_dotted_name();
    node->children.push_back(std::move(input));
    if (at_op("(")) parse_call_args(node.get());
    return node;
  }

  // "name(args) | name2 ..." as used by {% filter %} and {% set x | f %}.
  ExprPtr parse_filter_chain(ExprPtr input, const Token& at) {
    ExprPtr node = parse_filter(std::move(input), at);
    while (at_op("|")) {
      const Token& bar = advance();
      node = parse_filter(std::move(node), bar);
    }
    return node;
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (at_op("|")) {
        const Token& at = advance();
        node = parse_filter(std::move(node), at);
      } else if (at_name("is")) {
        node = parse_test(std::move(node));
      } else if (at_op("(")) {
        node = parse_call(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_test(ExprPtr input) {
    const Token& at = advance();  // 'is'
    ExprPtr node = make(ExprKind::kTest, at);
    if (at_name("not")) {
      advance();
      node->negated = true;
    }
    node->name = parse_dotted_name();
    node->children.push_back(std::move(input));
    const Token& t = cur();
    if (at_op("(")) {
      parse_call_args(node.get());
    } else if ((t.kind == TokenKind::kName || t.kind == TokenKind::kString ||
                t.kind == TokenKind::kInteger || t.kind == TokenKind::kFloat || at_op("[") ||
                at_op("{")) &&
               !at_name("else") && !at_name("or") && !at_name("and")) {
      if (at_name("is")) fail("cannot chain multiple tests with 'is'");
      // One bare argument: "x is divisibleby 3", "x is sameas none".
      node->children.push_back(parse_postfix(parse_primary()));
    }
    return node;
  }
};

}  // namespace

Program parse_template(std::string_view source, const LexOptions& options) {
  Parser parser(tokenize(source, options));
  return parser.parse_program();
}

}  // namespace ug::jinja
