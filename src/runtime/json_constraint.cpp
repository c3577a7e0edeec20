#include "runtime/json_constraint.h"

namespace ug {

namespace {
constexpr size_t kMaxDepth = 64;
// Outside strings; bounds how long a model can stall in whitespace.
constexpr int kMaxWhitespaceRun = 32;

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
}  // namespace

std::string JsonValidator::shortest_completion() const {
  std::string out;
  Expect e = expect_;
  switch (e) {
    case Expect::kString:
      if (escape_ == 1) out += 'n';
      if (escape_ >= 2) out.append(size_t(6 - escape_), '0');
      out += '"';
      if (string_is_key_) out += ":0";
      break;
    case Expect::kNumber:
      if (num_ == Num::kMinus || num_ == Num::kDot || num_ == Num::kExp || num_ == Num::kExpSign) {
        out += '0';
      }
      break;
    case Expect::kLiteral:
      out += literal_;
      break;
    case Expect::kColon:
      out += ":0";
      break;
    case Expect::kKey:
      out += "\"\":0";
      break;
    case Expect::kValue:
      if (stack_.empty()) {
        out += top_ == JsonTop::kArray ? "[]" : "{}";
        return out;
      }
      out += '0';
      break;
    case Expect::kKeyOrEnd:
    case Expect::kValueOrEnd:
    case Expect::kCommaOrEnd:
    case Expect::kDone:
      break;
  }
  for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) out += *it == '{' ? '}' : ']';
  return out;
}

bool JsonValidator::accepts(std::string_view text) const {
  JsonValidator copy = *this;
  return copy.feed(text);
}

bool JsonValidator::feed(std::string_view text) {
  JsonValidator saved = *this;
  for (char ch : text) {
    if (!step(ch)) {
      *this = std::move(saved);
      return false;
    }
  }
  return true;
}

void JsonValidator::end_value() {
  if (stack_.empty()) {
    expect_ = Expect::kDone;
  } else {
    expect_ = Expect::kCommaOrEnd;
  }
}

bool JsonValidator::begin_value(char ch) {
  if (stack_.empty()) {  // the top-level value
    if (top_ == JsonTop::kObject && ch != '{') return false;
    if (top_ == JsonTop::kArray && ch != '[') return false;
  }
  switch (ch) {
    case '{':
    case '[':
      if (stack_.size() >= kMaxDepth) return false;
      stack_.push_back(ch);
      expect_ = ch == '{' ? Expect::kKeyOrEnd : Expect::kValueOrEnd;
      return true;
    case '"':
      expect_ = Expect::kString;
      string_is_key_ = false;
      escape_ = 0;
      return true;
    case 't':
      literal_ = "rue";
      expect_ = Expect::kLiteral;
      return true;
    case 'f':
      literal_ = "alse";
      expect_ = Expect::kLiteral;
      return true;
    case 'n':
      literal_ = "ull";
      expect_ = Expect::kLiteral;
      return true;
    case '-':
      num_ = Num::kMinus;
      expect_ = Expect::kNumber;
      return true;
    default:
      if (!is_digit(ch)) return false;
      num_ = ch == '0' ? Num::kZero : Num::kInt;
      expect_ = Expect::kNumber;
      return true;
  }
}

// A byte after a complete value inside a container, or a container's first byte.
bool JsonValidator::structural(char ch) {
  switch (expect_) {
    case Expect::kValue:
      return begin_value(ch);
    case Expect::kValueOrEnd:
      if (ch == ']') {
        stack_.pop_back();
        end_value();
        return true;
      }
      return begin_value(ch);
    case Expect::kKeyOrEnd:
      if (ch == '}') {
        stack_.pop_back();
        end_value();
        return true;
      }
      [[fallthrough]];
    case Expect::kKey:
      if (ch != '"') return false;
      expect_ = Expect::kString;
      string_is_key_ = true;
      escape_ = 0;
      return true;
    case Expect::kColon:
      if (ch != ':') return false;
      expect_ = Expect::kValue;
      return true;
    case Expect::kCommaOrEnd:
      if (ch == ',') {
        expect_ = stack_.back() == '{' ? Expect::kKey : Expect::kValue;
        return true;
      }
      if ((ch == '}' && stack_.back() == '{') || (ch == ']' && stack_.back() == '[')) {
        stack_.pop_back();
        end_value();
        return true;
      }
      return false;
    default:
      return false;
  }
}

bool JsonValidator::step(char ch) {
  switch (expect_) {
    case Expect::kDone:
      return false;
    case Expect::kString: {
      const auto u = static_cast<unsigned char>(ch);
      if (escape_ == 1) {
        if (ch == 'u') {
          escape_ = 2;
          return true;
        }
        if (ch == '"' || ch == '\\' || ch == '/' || ch == 'b' || ch == 'f' || ch == 'n' ||
            ch == 'r' || ch == 't') {
          escape_ = 0;
          return true;
        }
        return false;
      }
      if (escape_ >= 2) {
        if (!is_hex(ch)) return false;
        escape_ = escape_ == 5 ? 0 : uint8_t(escape_ + 1);
        return true;
      }
      if (ch == '\\') {
        escape_ = 1;
        return true;
      }
      if (u < 0x20) return false;
      if (ch == '"') {
        if (string_is_key_) {
          expect_ = Expect::kColon;
        } else {
          end_value();
        }
        whitespace_run_ = 0;
      }
      return true;
    }
    case Expect::kLiteral:
      if (ch != *literal_) return false;
      ++literal_;
      if (!*literal_) end_value();
      return true;
    case Expect::kNumber:
      switch (num_) {
        case Num::kMinus:
          if (!is_digit(ch)) return false;
          num_ = ch == '0' ? Num::kZero : Num::kInt;
          return true;
        case Num::kZero:
        case Num::kInt:
          if (is_digit(ch) && num_ == Num::kInt) return true;
          if (ch == '.') {
            num_ = Num::kDot;
            return true;
          }
          if (ch == 'e' || ch == 'E') {
            num_ = Num::kExp;
            return true;
          }
          break;
        case Num::kDot:
          if (!is_digit(ch)) return false;
          num_ = Num::kFrac;
          return true;
        case Num::kFrac:
          if (is_digit(ch)) return true;
          if (ch == 'e' || ch == 'E') {
            num_ = Num::kExp;
            return true;
          }
          break;
        case Num::kExp:
          if (ch == '+' || ch == '-') {
            num_ = Num::kExpSign;
            return true;
          }
          [[fallthrough]];
        case Num::kExpSign:
          if (!is_digit(ch)) return false;
          num_ = Num::kExpDigits;
          return true;
        case Num::kExpDigits:
          if (is_digit(ch)) return true;
          break;
      }
      // The number ended; a top-level number cannot end inside the document (no terminator).
      if (stack_.empty()) return false;
      expect_ = Expect::kCommaOrEnd;
      whitespace_run_ = 0;
      if (is_space(ch)) return ++whitespace_run_ <= kMaxWhitespaceRun;
      return structural(ch);
    default:
      if (is_space(ch)) {
        if (expect_ == Expect::kValue && stack_.empty()) return false;  // start with the value
        return ++whitespace_run_ <= kMaxWhitespaceRun;
      }
      whitespace_run_ = 0;
      return structural(ch);
  }
}

}  // namespace ug
