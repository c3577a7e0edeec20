// UTF-8 helpers shared by the tokenizer and its stream decoder.
//
// Well-formedness follows Unicode Table 3-7 (no overlong forms, no surrogates, nothing above
// U+10FFFF). Ill-formed input is measured in "maximal subparts" (Unicode §3.9, the W3C/WHATWG
// convention): each maximal subpart becomes one U+FFFD when text is sanitized.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ug::utf8 {

enum class SeqStatus {
  kValid,      // a complete well-formed sequence of `len` bytes encoding `cp`
  kTruncated,  // `s` ends after `len` bytes that are a well-formed prefix of a longer sequence
  kInvalid,    // the first `len` bytes (>= 1) are a maximal ill-formed subpart
};

struct SeqInfo {
  SeqStatus status = SeqStatus::kInvalid;
  int len = 0;
  uint32_t cp = 0;  // kValid only
};

// Classifies the sequence at the start of `s` (which must not be empty).
SeqInfo next_sequence(std::string_view s);

// Appends the UTF-8 encoding of `cp` (which must be a Unicode scalar value).
void append_codepoint(uint32_t cp, std::string& out);

// True when all of `s` is well-formed UTF-8.
bool is_valid(std::string_view s);

// `s` with each maximal ill-formed subpart (including a truncated tail) replaced by U+FFFD.
std::string sanitize(std::string_view s);

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace ug::utf8
