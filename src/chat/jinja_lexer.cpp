#include "chat/jinja_lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "chat/jinja_value.h"

namespace ug::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// jinja2 lexes the whole template after turning \r\n and \r into \n and dropping one trailing
// newline (keep_trailing_newline=False).
std::string normalize_source(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class Lexer {
 public:
  Lexer(std::string source, const LexOptions& options)
      : src_(std::move(source)), options_(options) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag_start(pos_);
      if (tag == std::string::npos) {
        push_text(std::string_view(src_).substr(pos_), pos_);
        pos_ = src_.size();
        break;
      }
      const char kind = src_[tag + 1];
      const char modifier =
          (tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+')) ? src_[tag + 2]
                                                                                    : '\0';
      std::string_view text = std::string_view(src_).substr(pos_, tag - pos_);
      const bool raw = kind == '%' && is_raw_begin(tag);
      text = strip_text_before_tag(text, modifier, kind != '{');
      push_text(text, pos_);
      const size_t inner = tag + 2 + (modifier ? 1 : 0);
      if (kind == '#') {
        lex_comment(tag, inner);
      } else if (raw) {
        lex_raw(tag);
      } else {
        lex_tag(tag, inner, kind == '{');
      }
    }
    Token end;
    end.kind = TokenKind::kEnd;
    locate(src_.size(), &end);
    tokens_.push_back(std::move(end));
    return std::move(tokens_);
  }

 private:
  std::string src_;
  LexOptions options_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  // jinja2's "line_starting": the previous match ended with a newline (or nothing was lexed
  // yet), so lstrip_blocks may strip leading whitespace that is not preceded by a newline.
  bool line_starting_ = true;

  void locate(size_t offset, Token* token) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const size_t line_index = static_cast<size_t>(it - line_starts_.begin()) - 1;
    token->line = static_cast<int>(line_index + 1);
    token->column = static_cast<int>(offset - line_starts_[line_index] + 1);
  }

  [[noreturn]] void fail(size_t offset, const std::string& message) const {
    Token where;
    locate(offset, &where);
    throw Fault(message, where.line, where.column);
  }

  size_t find_tag_start(size_t from) const {
    size_t pos = from;
    while ((pos = src_.find('{', pos)) != std::string::npos) {
      if (pos + 1 < src_.size()) {
        const char next = src_[pos + 1];
        if (next == '{' || next == '%' || next == '#') return pos;
      }
      ++pos;
    }
    return std::string::npos;
  }

  std::string_view strip_text_before_tag(std::string_view text, char modifier,
                                         bool block_or_comment) const {
    if (modifier == '-') {
      size_t end = text.size();
      while (end > 0 && is_space(text[end - 1])) --end;
      return text.substr(0, end);
    }
    if (modifier == '+' || !options_.lstrip_blocks || !block_or_comment) return text;
    const size_t newline = text.rfind('\n');
    const size_t line_pos = newline == std::string_view::npos ? 0 : newline + 1;
    if (line_pos == 0 && !line_starting_) return text;
    if (line_pos == text.size()) return text;
    for (size_t i = line_pos; i < text.size(); ++i) {
      if (!is_space(text[i])) return text;
    }
    return text.substr(0, line_pos);
  }

  void push_text(std::string_view text, size_t offset) {
    if (text.empty()) return;
    Token token;
    token.kind = TokenKind::kText;
    token.text = std::string(text);
    locate(offset, &token);
    tokens_.push_back(std::move(token));
  }

  void push(TokenKind kind, std::string text, size_t offset) {
    Token token;
    token.kind = kind;
    token.text = std::move(text);
    locate(offset, &token);
    tokens_.push_back(std::move(token));
  }

  // After a tag end: "-" strips all following whitespace, trim_blocks eats one newline.
  void finish_tag(size_t after_end, char end_modifier, bool trims_newline) {
    size_t pos = after_end;
    if (end_modifier == '-') {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
    } else if (end_modifier != '+' && trims_newline && options_.trim_blocks && pos < src_.size() &&
               src_[pos] == '\n') {
      ++pos;
    }
    line_starting_ = pos > after_end && src_[pos - 1] == '\n';
    pos_ = pos;
  }

  void lex_comment(size_t tag, size_t inner) {
    const size_t close = src_.find("#}", inner);
    if (close == std::string::npos) fail(tag, "missing end of comment tag");
    char end_modifier = '\0';
    if (close > inner && (src_[close - 1] == '-' || src_[close - 1] == '+')) {
      end_modifier = src_[close - 1];
    }
    finish_tag(close + 2, end_modifier, true);
  }

  // {% raw %} ... {% endraw %}: everything between is text.
  bool is_raw_begin(size_t tag) const {
    size_t pos = tag + 2;
    if (pos < src_.size() && (src_[pos] == '-' || src_[pos] == '+')) ++pos;
    while (pos < src_.size() && is_space(src_[pos])) ++pos;
    if (src_.compare(pos, 3, "raw") != 0) return false;
    pos += 3;
    while (pos < src_.size() && is_space(src_[pos])) ++pos;
    if (pos < src_.size() && src_[pos] == '-') ++pos;
    return src_.compare(pos, 2, "%}") == 0;
  }

  void lex_raw(size_t tag) {
    size_t pos = src_.find("%}", tag + 2);
    const bool strip_after_begin = src_[pos - 1] == '-';
    pos += 2;
    if (strip_after_begin) {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
    }
    // Find "{%" [-+] ws* "endraw" ws* [-+] "%}".
    size_t search = pos;
    while (true) {
      const size_t begin = src_.find("{%", search);
      if (begin == std::string::npos) fail(tag, "missing end of raw directive");
      size_t p = begin + 2;
      char modifier = '\0';
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) modifier = src_[p++];
      while (p < src_.size() && is_space(src_[p])) ++p;
      if (src_.compare(p, 6, "endraw") != 0) {
        search = begin + 2;
        continue;
      }
      p += 6;
      while (p < src_.size() && is_space(src_[p])) ++p;
      char end_modifier = '\0';
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) end_modifier = src_[p++];
      if (src_.compare(p, 2, "%}") != 0) {
        search = begin + 2;
        continue;
      }
      std::string_view body = std::string_view(src_).substr(pos, begin - pos);
      line_starting_ = false;
      body = strip_text_before_tag(body, modifier, true);
      push_text(body, pos);
      finish_tag(p + 2, end_modifier, true);
      return;
    }
  }

  // Tokens inside {{ }} or {% %} up to the matching end delimiter (ignored inside brackets).
  void lex_tag(size_t tag, size_t inner, bool variable) {
    push(variable ? TokenKind::kVarBegin : TokenKind::kBlockBegin, variable ? "{{" : "{%", tag);
    std::vector<char> brackets;
    size_t pos = inner;
    while (true) {
      while (pos < src_.size() && is_space(src_[pos])) ++pos;
      if (pos >= src_.size()) {
        fail(tag, variable ? "unexpected end of template, expected '}}'"
                           : "unexpected end of template, expected '%}'");
      }
      if (brackets.empty()) {
        const char* close = variable ? "}}" : "%}";
        char end_modifier = '\0';
        size_t end = std::string::npos;
        if ((src_[pos] == '-' || (!variable && src_[pos] == '+')) &&
            src_.compare(pos + 1, 2, close) == 0) {
          end_modifier = src_[pos];
          end = pos + 3;
        } else if (src_.compare(pos, 2, close) == 0) {
          end = pos + 2;
        }
        if (end != std::string::npos) {
          push(variable ? TokenKind::kVarEnd : TokenKind::kBlockEnd, close, pos);
          finish_tag(end, end_modifier, !variable);
          return;
        }
      }
      pos = lex_token(pos, &brackets);
    }
  }

  size_t lex_token(size_t pos, std::vector<char>* brackets) {
    const char c = src_[pos];
    if (is_name_start(c)) {
      size_t end = pos;
      while (end < src_.size() && is_name_char(src_[end])) ++end;
      push(TokenKind::kName, src_.substr(pos, end - pos), pos);
      return end;
    }
    if (is_digit(c)) return lex_number(pos);
    if (c == '\'' || c == '"') return lex_string(pos);
    static constexpr std::string_view kTwoCharOps[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwoCharOps) {
      if (src_.compare(pos, 2, op) == 0) {
        push(TokenKind::kOperator, std::string(op), pos);
        return pos + 2;
      }
    }
    static constexpr std::string_view kOneCharOps = "+-/*%~[](){}><=.:|,;";
    if (kOneCharOps.find(c) == std::string_view::npos) {
      if (c > ' ' && c < 0x7f) fail(pos, std::string("unexpected char '") + c + "'");
      // Control and non-ASCII characters are named by code point, keeping the message valid UTF-8.
      size_t next = pos;
      char name[32];
      std::snprintf(name, sizeof(name), "U+%04X", utf8_decode(src_, pos, &next));
      fail(pos, std::string("unexpected character ") + name);
    }
    if (c == '(' || c == '[' || c == '{') {
      brackets->push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (brackets->empty()) fail(pos, std::string("unexpected '") + c + "'");
      if (brackets->back() != c) {
        fail(pos, std::string("unexpected '") + c + "', expected '" + brackets->back() + "'");
      }
      brackets->pop_back();
    }
    push(TokenKind::kOperator, std::string(1, c), pos);
    return pos + 1;
  }

  // Digits with optional '_' separators.
  size_t scan_digits(size_t pos, std::string* digits) const {
    while (pos < src_.size()) {
      if (is_digit(src_[pos])) {
        digits->push_back(src_[pos]);
        ++pos;
      } else if (src_[pos] == '_' && pos + 1 < src_.size() && is_digit(src_[pos + 1]) &&
                 !digits->empty()) {
        ++pos;
      } else {
        break;
      }
    }
    return pos;
  }

  size_t lex_number(size_t start) {
    const bool after_dot = start > 0 && src_[start - 1] == '.';
    // Prefixed integers: 0x.., 0o.., 0b...
    if (src_[start] == '0' && start + 2 < src_.size()) {
      const char p = static_cast<char>(src_[start + 1] | 0x20);
      const int base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
      if (base != 0) {
        size_t pos = start + 2;
        uint64_t value = 0;
        bool any = false;
        while (pos < src_.size()) {
          if (src_[pos] == '_') {
            ++pos;
            continue;
          }
          const int d = hex_value(src_[pos]);
          if (d < 0 || d >= base) break;
          if (value > (static_cast<uint64_t>(INT64_MAX) - static_cast<uint64_t>(d)) /
                          static_cast<uint64_t>(base)) {
            fail(start, "integer literal too large");
          }
          value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
          any = true;
          ++pos;
        }
        if (any) {
          push_integer(static_cast<int64_t>(value), start);
          return pos;
        }
      }
    }
    std::string digits;
    size_t pos = scan_digits(start, &digits);
    bool is_float = false;
    std::string literal = digits;
    if (!after_dot && pos + 1 < src_.size() && src_[pos] == '.' && is_digit(src_[pos + 1])) {
      std::string fraction;
      pos = scan_digits(pos + 1, &fraction);
      literal += "." + fraction;
      is_float = true;
    }
    if (!after_dot && pos < src_.size() && (src_[pos] == 'e' || src_[pos] == 'E')) {
      size_t p = pos + 1;
      std::string exponent;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) exponent.push_back(src_[p++]);
      std::string exp_digits;
      const size_t after = scan_digits(p, &exp_digits);
      if (!exp_digits.empty()) {
        literal += "e" + exponent + exp_digits;
        pos = after;
        is_float = true;
      }
    }
    if (is_float) {
      Token token;
      token.kind = TokenKind::kFloat;
      token.text = literal;
      token.number = std::strtod(literal.c_str(), nullptr);
      locate(start, &token);
      tokens_.push_back(std::move(token));
      return pos;
    }
    errno = 0;
    char* end = nullptr;
    const long long value = std::strtoll(digits.c_str(), &end, 10);
    if (errno == ERANGE) fail(start, "integer literal too large");
    push_integer(value, start);
    return pos;
  }

  void push_integer(int64_t value, size_t offset) {
    Token token;
    token.kind = TokenKind::kInteger;
    token.integer = value;
    locate(offset, &token);
    tokens_.push_back(std::move(token));
  }

  // Python "unicode-escape" decoding of the literal body, as jinja2 does.
  size_t lex_string(size_t start) {
    const char quote = src_[start];
    std::string value;
    size_t pos = start + 1;
    while (true) {
      if (pos >= src_.size()) fail(start, "unterminated string literal");
      const char c = src_[pos];
      if (c == quote) break;
      if (c != '\\') {
        value.push_back(c);
        ++pos;
        continue;
      }
      if (pos + 1 >= src_.size()) fail(start, "unterminated string literal");
      const char e = src_[pos + 1];
      pos += 2;
      switch (e) {
        case '\n':
          break;
        case '\\':
        case '\'':
        case '"':
          value.push_back(e);
          break;
        case 'a':
          value.push_back('\a');
          break;
        case 'b':
          value.push_back('\b');
          break;
        case 'f':
          value.push_back('\f');
          break;
        case 'n':
          value.push_back('\n');
          break;
        case 'r':
          value.push_back('\r');
          break;
        case 't':
          value.push_back('\t');
          break;
        case 'v':
          value.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t width = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (size_t i = 0; i < width; ++i) {
            const int d = pos + i < src_.size() ? hex_value(src_[pos + i]) : -1;
            if (d < 0) fail(pos - 2, std::string("truncated \\") + e + " escape in string literal");
            cp = cp * 16 + static_cast<uint32_t>(d);
          }
          if (cp > 0x10ffff) fail(pos - 2, "invalid \\U escape in string literal");
          pos += width;
          utf8_append(value, cp);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t cp = static_cast<uint32_t>(e - '0');
            for (int i = 0; i < 2 && pos < src_.size() && src_[pos] >= '0' && src_[pos] <= '7';
                 ++i) {
              cp = cp * 8 + static_cast<uint32_t>(src_[pos++] - '0');
            }
            utf8_append(value, cp);
          } else {
            // Python keeps unknown escapes verbatim.
            value.push_back('\\');
            value.push_back(e);
          }
          break;
      }
    }
    push(TokenKind::kString, std::move(value), start);
    return pos + 1;
  }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexOptions& options) {
  Lexer lexer(normalize_source(source, options.keep_trailing_newline), options);
  return lexer.run();
}

}  // namespace ug::jinja
