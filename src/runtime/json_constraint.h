// Incremental JSON validator for constrained decoding (response_format json_object/json_schema):
// fed the generated text byte by byte, it says whether the text so far can still be continued into
// one complete JSON document of the required top-level type, and when the document is complete.
// The scheduler asks it, for each candidate token, whether the token's text keeps the prefix
// valid, and masks the tokens that do not.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ug {

enum class JsonTop { kAny, kObject, kArray };

class JsonValidator {
 public:
  explicit JsonValidator(JsonTop top = JsonTop::kObject) : top_(top) {}

  // Feeds `text`; false (state unchanged) when any byte would make the prefix invalid.
  bool feed(std::string_view text);
  // Whether feed(text) would succeed, without changing the state.
  bool accepts(std::string_view text) const;
  // A whole document has been read (only the end of generation may follow).
  bool complete() const { return expect_ == Expect::kDone; }
  // The shortest text that completes the document from here ("\"}]" ...); lets a generation
  // that is running out of tokens close what it opened.
  std::string shortest_completion() const;

 private:
  enum class Expect : uint8_t {
    kValue,       // any value (or the top-level value)
    kKeyOrEnd,    // after '{'
    kKey,         // after ',' in an object
    kColon,       // after a key
    kCommaOrEnd,  // after a value inside a container
    kValueOrEnd,  // after '['
    kString,      // inside a string
    kNumber,      // inside a number
    kLiteral,     // inside true/false/null
    kDone,
  };
  enum class Num : uint8_t { kMinus, kZero, kInt, kDot, kFrac, kExp, kExpSign, kExpDigits };

  bool step(char ch);
  bool begin_value(char ch);
  void end_value();
  bool structural(char ch);

  JsonTop top_;
  Expect expect_ = Expect::kValue;
  std::vector<char> stack_;  // '{' or '['
  bool string_is_key_ = false;
  uint8_t escape_ = 0;  // 1: after a backslash; 2..5: hex digits of \u still expected (5 - n)
  Num num_ = Num::kInt;
  const char* literal_ = nullptr;  // rest of true/false/null still expected
  int whitespace_run_ = 0;
};

}  // namespace ug
