// Jinja lexer: splits template source into text runs and the tokens inside {{ }} / {% %} tags,
// applying jinja2's whitespace rules (-/+ tag modifiers, trim_blocks, lstrip_blocks, the dropped
// trailing newline, newline normalisation). Comments and {% raw %} blocks are resolved here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ug::jinja {

enum class TokenKind : uint8_t {
  kText,        // literal template text (already whitespace-processed)
  kVarBegin,    // {{
  kVarEnd,      // }}
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kName,
  kString,   // text holds the unescaped value
  kInteger,  // integer holds the value
  kFloat,    // number holds the value
  kOperator,
  kEnd,
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string text;
  int64_t integer = 0;
  double number = 0.0;
  int line = 1;
  int column = 1;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Throws Fault (with line/column) on malformed input. The last token is always kEnd.
std::vector<Token> tokenize(std::string_view source, const LexOptions& options);

}  // namespace ug::jinja
