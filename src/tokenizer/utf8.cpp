#include "tokenizer/utf8.h"

namespace ug::utf8 {

SeqInfo next_sequence(std::string_view s) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t b0 = byte(0);
  if (b0 < 0x80) return {SeqStatus::kValid, 1, b0};

  // Number of continuation bytes and the allowed range of the first one (Table 3-7); later
  // continuation bytes are always 80..BF.
  int n_cont = 0;
  uint8_t lo = 0x80, hi = 0xBF;
  uint32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n_cont = 1;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n_cont = 2;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n_cont = 3;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return {SeqStatus::kInvalid, 1, 0};  // stray continuation byte, C0/C1, F5..FF
  }

  for (int k = 1; k <= n_cont; ++k) {
    if (static_cast<size_t>(k) >= s.size()) return {SeqStatus::kTruncated, k, 0};
    const uint8_t b = byte(k);
    if (b < lo || b > hi) return {SeqStatus::kInvalid, k, 0};
    cp = (cp << 6) | (b & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  return {SeqStatus::kValid, n_cont + 1, cp};
}

void append_codepoint(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_valid(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const SeqInfo info = next_sequence(s.substr(i));
    if (info.status != SeqStatus::kValid) return false;
    i += static_cast<size_t>(info.len);
  }
  return true;
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const SeqInfo info = next_sequence(s.substr(i));
    if (info.status == SeqStatus::kValid) {
      out.append(s.substr(i, static_cast<size_t>(info.len)));
    } else {
      out.append(kReplacementChar);
    }
    i += static_cast<size_t>(info.len);
  }
  return out;
}

}  // namespace ug::utf8
