// Python str / number behaviour the Jinja builtins need: strip/split/splitlines/replace with
// Python's Unicode whitespace and line breaks, case mapping, str.format and printf-style %
// formatting, int()/float() parsing and round().
#include "chat/jinja_python.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "chat/jinja_interp.h"

namespace ug::jinja {

int64_t int_arg(const Value& v, std::string_view what) {
  int64_t i = 0;
  if (!as_integer(v, &i)) {
    throw Fault(std::string(what) + " expects an integer, got '" + type_name(v) + "'");
  }
  return i;
}

std::string str_arg(const Value& v, std::string_view what) {
  if (!v.is_string()) {
    throw Fault(std::string(what) + " expects a string, got '" + type_name(v) + "'");
  }
  return v.str();
}

// --- string helpers ----------------------------------------------------------------------------

bool ascii_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
namespace {

char ascii_upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
}
char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

enum class CaseOp { kUpper, kLower, kSwap, kTitle };

void append_case(std::string& out, uint32_t cp, CaseOp op) {
  if (op == CaseOp::kUpper) {
    append_upper(out, cp);
  } else if (op == CaseOp::kTitle) {
    append_title(out, cp);
  } else if (op == CaseOp::kLower) {
    append_lower(out, cp);
  } else if (simple_lower(cp) != cp) {
    append_lower(out, cp);
  } else {
    append_upper(out, cp);
  }
}

std::string map_case(const std::string& s, CaseOp op) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (pos < s.size()) {
    const auto c = static_cast<unsigned char>(s[pos]);
    if (c < 0x80) {
      char ch = s[pos];
      if (op == CaseOp::kUpper || (op == CaseOp::kSwap && ch >= 'a' && ch <= 'z')) {
        ch = ascii_upper(ch);
      } else {
        ch = ascii_lower(ch);
      }
      out.push_back(ch);
      ++pos;
      continue;
    }
    size_t next = pos;
    const uint32_t cp = utf8_decode(s, pos, &next);
    if (next == pos + 1 && c >= 0x80) {
      out.push_back(s[pos]);  // invalid byte: keep as is
    } else {
      append_case(out, cp, op);
    }
    pos = next;
  }
  return out;
}

}  // namespace

std::string to_upper(const std::string& s) {
  return map_case(s, CaseOp::kUpper);
}
std::string to_lower(const std::string& s) {
  return map_case(s, CaseOp::kLower);
}
std::string swapcase(const std::string& s) {
  return map_case(s, CaseOp::kSwap);
}

namespace {

// Applies `start_op` where `starts_word` says a word begins and lower case elsewhere.
template <class StartsWord>
std::string recase_words(const std::string& s, CaseOp start_op, StartsWord starts_word) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  bool previous_cased = false;
  bool first = true;
  while (pos < s.size()) {
    size_t next = pos;
    const uint32_t cp = utf8_decode(s, pos, &next);
    const bool upper = starts_word(cp, first, previous_cased);
    append_case(out, cp, upper ? start_op : CaseOp::kLower);
    previous_cased = is_cased(cp);
    first = false;
    pos = next;
  }
  return out;
}

}  // namespace

// Python str.capitalize(): first character upper case, the rest lower case.
std::string capitalize(const std::string& s) {
  return recase_words(s, CaseOp::kTitle, [](uint32_t, bool first, bool) { return first; });
}

// Python str.title(): a cased character is upper-cased when the previous one is not cased.
std::string python_title(const std::string& s) {
  return recase_words(s, CaseOp::kTitle,
                      [](uint32_t, bool, bool previous_cased) { return !previous_cased; });
}

// jinja2's title filter: words start after '-', whitespace, '(', '{', '[' or '<'.
std::string jinja_title(const std::string& s) {
  bool word_start = true;
  return recase_words(s, CaseOp::kUpper, [&word_start](uint32_t cp, bool, bool) {
    const bool separator =
        cp == '-' || is_python_space(cp) || cp == '(' || cp == '{' || cp == '[' || cp == '<';
    const bool upper = word_start;
    word_start = separator;
    return upper;
  });
}

std::vector<uint32_t> code_points(std::string_view s) {
  std::vector<uint32_t> cps;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    cps.push_back(utf8_decode(s, pos, &next));
    pos = next;
  }
  return cps;
}

// Python str.strip/lstrip/rstrip; `chars` null means whitespace.
std::string python_strip(const std::string& s, const Value* chars, bool left, bool right) {
  std::vector<uint32_t> strip_set;
  const bool whitespace = chars == nullptr || chars->is_none() || chars->is_undefined();
  if (!whitespace) strip_set = code_points(str_arg(*chars, "strip"));
  const auto strip = [&](uint32_t cp) {
    return whitespace ? is_python_space(cp)
                      : std::find(strip_set.begin(), strip_set.end(), cp) != strip_set.end();
  };
  const std::vector<size_t> offsets = utf8_offsets(s);
  size_t begin = 0;
  size_t end = offsets.size() - 1;
  size_t dummy = 0;
  if (left) {
    while (begin < end && strip(utf8_decode(s, offsets[begin], &dummy))) ++begin;
  }
  if (right) {
    while (end > begin && strip(utf8_decode(s, offsets[end - 1], &dummy))) --end;
  }
  return s.substr(offsets[begin], offsets[end] - offsets[begin]);
}

// Python str.split / rsplit. sep null: runs of whitespace, empty strings dropped.
std::vector<std::string> python_split(const std::string& s, const Value* sep_value,
                                      int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  const bool whitespace = sep_value == nullptr || sep_value->is_none();
  if (whitespace) {
    // Work on code points so Unicode spaces separate too.
    const std::vector<size_t> offsets = utf8_offsets(s);
    const size_t n = offsets.size() - 1;
    size_t dummy = 0;
    const auto space_at = [&](size_t i) {
      return is_python_space(utf8_decode(s, offsets[i], &dummy));
    };
    std::vector<std::pair<size_t, size_t>> words;  // code point ranges
    if (!from_right) {
      size_t i = 0;
      while (i < n) {
        while (i < n && space_at(i)) ++i;
        if (i >= n) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t end = n;
          while (end > i && space_at(end - 1)) --end;
          words.emplace_back(i, end);
          break;
        }
        size_t j = i;
        while (j < n && !space_at(j)) ++j;
        words.emplace_back(i, j);
        i = j;
      }
    } else {
      size_t i = n;
      while (i > 0) {
        while (i > 0 && space_at(i - 1)) --i;
        if (i == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t begin = 0;
          while (begin < i && space_at(begin)) ++begin;
          words.emplace_back(begin, i);
          break;
        }
        size_t j = i;
        while (j > 0 && !space_at(j - 1)) --j;
        words.emplace_back(j, i);
        i = j;
      }
      std::reverse(words.begin(), words.end());
    }
    for (const auto& [b, e] : words) parts.push_back(s.substr(offsets[b], offsets[e] - offsets[b]));
    return parts;
  }
  const std::string sep = str_arg(*sep_value, "split");
  if (sep.empty()) throw Fault("empty separator");
  if (!from_right) {
    size_t pos = 0;
    while (true) {
      const size_t hit = s.find(sep, pos);
      if (hit == std::string::npos ||
          (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
        parts.push_back(s.substr(pos));
        break;
      }
      parts.push_back(s.substr(pos, hit - pos));
      pos = hit + sep.size();
    }
    return parts;
  }
  size_t end = s.size();
  while (true) {
    const size_t hit = end >= sep.size() ? s.rfind(sep, end - sep.size()) : std::string::npos;
    if (hit == std::string::npos ||
        (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
      parts.push_back(s.substr(0, end));
      break;
    }
    parts.push_back(s.substr(hit + sep.size(), end - hit - sep.size()));
    end = hit;
  }
  std::reverse(parts.begin(), parts.end());
  return parts;
}

namespace {

bool is_line_break(uint32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || cp == 0x1c || cp == 0x1d ||
         cp == 0x1e || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

}  // namespace

// Python str.splitlines().
std::vector<std::string> python_splitlines(const std::string& s, bool keepends) {
  std::vector<std::string> lines;
  size_t pos = 0;
  size_t line_start = 0;
  while (pos < s.size()) {
    size_t next = pos;
    const uint32_t cp = utf8_decode(s, pos, &next);
    if (is_line_break(cp)) {
      size_t end = next;
      if (cp == '\r' && end < s.size() && s[end] == '\n') ++end;
      lines.push_back(s.substr(line_start, (keepends ? end : pos) - line_start));
      line_start = end;
      pos = end;
    } else {
      pos = next;
    }
  }
  if (line_start < s.size()) lines.push_back(s.substr(line_start));
  return lines;
}

std::string python_replace(const std::string& s, const std::string& old, const std::string& with,
                           int64_t count) {
  std::string out;
  if (old.empty()) {
    // Python inserts `with` before every character and at the end.
    const std::vector<size_t> offsets = utf8_offsets(s);
    int64_t done = 0;
    for (size_t i = 0; i + 1 < offsets.size(); ++i) {
      if (count < 0 || done < count) {
        out += with;
        ++done;
      }
      out.append(s, offsets[i], offsets[i + 1] - offsets[i]);
    }
    if (count < 0 || done < count) out += with;
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    const size_t hit = s.find(old, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += with;
    pos = hit + old.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

size_t code_point_index(const std::string& s, size_t byte_offset) {
  return utf8_length(std::string_view(s).substr(0, byte_offset));
}

// Byte range of code points [start, end) with Python's negative / clamped semantics.
void byte_range(const std::string& s, const Value* start_v, const Value* end_v, size_t* begin,
                size_t* end) {
  const std::vector<size_t> offsets = utf8_offsets(s);
  const auto n = static_cast<int64_t>(offsets.size() - 1);
  const auto norm = [n](int64_t i) { return i < 0 ? std::max<int64_t>(0, i + n) : std::min(i, n); };
  int64_t b = 0;
  int64_t e = n;
  if (start_v != nullptr && !start_v->is_none()) b = norm(int_arg(*start_v, "find"));
  if (end_v != nullptr && !end_v->is_none()) e = norm(int_arg(*end_v, "find"));
  *begin = offsets[static_cast<size_t>(b)];
  *end = offsets[static_cast<size_t>(std::max(b, e))];
}

std::string html_escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string pad(const std::string& s, int64_t width, char align, const std::string& fill) {
  const auto len = static_cast<int64_t>(utf8_length(s));
  if (width <= len) return s;
  const int64_t total = width - len;
  int64_t left = 0;
  if (align == '>') {
    left = total;
  } else if (align == '^') {
    left = total / 2;
  }
  std::string out;
  for (int64_t i = 0; i < left; ++i) out += fill;
  out += s;
  for (int64_t i = 0; i < total - left; ++i) out += fill;
  return out;
}

// --- number formatting (str.format specs and printf-style %) ----------------------------------

namespace {

std::string c_format_double(double d, char type, int precision, bool alternate) {
  if (std::isinf(d)) return d > 0 ? (type >= 'a' ? "inf" : "INF") : (type >= 'a' ? "-inf" : "-INF");
  if (std::isnan(d)) return type >= 'a' ? "nan" : "NAN";
  char fmt[16];
  std::snprintf(fmt, sizeof(fmt), "%%%s.*%c", alternate ? "#" : "", type);
  const int n = std::snprintf(nullptr, 0, fmt, precision, d);
  std::string out(static_cast<size_t>(std::max(n, 0)) + 1, '\0');
  std::snprintf(out.data(), out.size(), fmt, precision, d);
  out.resize(static_cast<size_t>(std::max(n, 0)));
  return out;
}

std::string int_in_base(int64_t value, int base, bool upper) {
  if (value == 0) return "0";
  const bool negative = value < 0;
  uint64_t u = negative ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  std::string digits;
  const char* table = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  while (u > 0) {
    digits.push_back(table[u % static_cast<uint64_t>(base)]);
    u /= static_cast<uint64_t>(base);
  }
  if (negative) digits.push_back('-');
  std::reverse(digits.begin(), digits.end());
  return digits;
}

std::string group_thousands(const std::string& digits, char separator) {
  // digits: optional sign then decimal digits, optionally followed by a fraction.
  size_t start = (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) ? 1 : 0;
  size_t end = digits.find_first_not_of("0123456789", start);
  if (end == std::string::npos) end = digits.size();
  std::string out = digits.substr(0, start);
  const size_t n = end - start;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[start + i]);
    if ((n - i - 1) % 3 == 0 && i + 1 < n) out.push_back(separator);
  }
  out += digits.substr(end);
  return out;
}

// Python format(value, spec) for str/int/float/bool/None.
std::string format_with_spec(const Value& value, const std::string& spec) {
  if (spec.empty()) return to_str(value);
  size_t i = 0;
  std::string fill = " ";
  char align = '\0';
  const auto is_align = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (spec.size() >= 2) {
    size_t next = 0;
    utf8_decode(spec, 0, &next);
    if (next < spec.size() && is_align(spec[next])) {
      fill = spec.substr(0, next);
      align = spec[next];
      i = next + 1;
    }
  }
  if (align == '\0' && i < spec.size() && is_align(spec[i])) align = spec[i++];
  char sign = '-';
  if (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) sign = spec[i++];
  bool alternate = false;
  if (i < spec.size() && spec[i] == '#') {
    alternate = true;
    ++i;
  }
  if (i < spec.size() && spec[i] == '0') {
    if (align == '\0') {
      fill = "0";
      align = '=';
    }
    ++i;
  }
  int64_t width = 0;
  while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') {
    width = std::min<int64_t>(width * 10 + (spec[i++] - '0'), 1 << 20);
  }
  char grouping = '\0';
  if (i < spec.size() && (spec[i] == ',' || spec[i] == '_')) grouping = spec[i++];
  int precision = -1;
  if (i < spec.size() && spec[i] == '.') {
    ++i;
    precision = 0;
    while (i < spec.size() && spec[i] >= '0' && spec[i] <= '9') {
      precision = std::min(precision * 10 + (spec[i++] - '0'), 1000);
    }
  }
  char type = '\0';
  if (i < spec.size()) type = spec[i++];
  if (i != spec.size()) throw Fault("invalid format specifier '" + spec + "'");

  if (value.is_string() || (!value.is_number() && type == '\0')) {
    if (type != '\0' && type != 's') {
      throw Fault("unknown format code '" + std::string(1, type) + "' for object of type '" +
                  type_name(value) + "'");
    }
    if (!value.is_string() && !value.is_none()) {
      throw Fault("unsupported format string passed to " + type_name(value) + ".__format__");
    }
    std::string s = to_str(value);
    if (precision >= 0) {
      const std::vector<size_t> offsets = utf8_offsets(s);
      if (static_cast<size_t>(precision) + 1 < offsets.size()) {
        s.resize(offsets[static_cast<size_t>(precision)]);
      }
    }
    return pad(s, width, align == '\0' ? '<' : (align == '=' ? '<' : align), fill);
  }
  if (!value.is_number()) {
    throw Fault("unsupported format string passed to " + type_name(value) + ".__format__");
  }
  std::string body;
  bool negative = false;
  int64_t iv = 0;
  const bool is_int = as_integer(value, &iv);
  if (is_int && (type == '\0' || type == 'd' || type == 'n' || type == 'x' || type == 'X' ||
                 type == 'o' || type == 'b' || type == 'c')) {
    negative = iv < 0;
    const uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(iv) : static_cast<uint64_t>(iv);
    if (type == 'c') {
      utf8_append(body, static_cast<uint32_t>(magnitude & 0x1fffff));
      negative = false;
    } else {
      const int base = type == 'x' || type == 'X' ? 16 : type == 'o' ? 8 : type == 'b' ? 2 : 10;
      body = int_in_base(static_cast<int64_t>(magnitude & INT64_MAX), base, type == 'X');
      if (magnitude > static_cast<uint64_t>(INT64_MAX)) body = "9223372036854775808";
      if (grouping != '\0' && base == 10) body = group_thousands(body, grouping);
      if (alternate && base != 10) {
        body = std::string("0") +
               (type == 'x'   ? 'x'
                : type == 'X' ? 'X'
                : type == 'o' ? 'o'
                              : 'b') +
               body;
      }
    }
  } else {
    if (type != '\0' && type != 'f' && type != 'F' && type != 'e' && type != 'E' && type != 'g' &&
        type != 'G' && type != '%' && type != 'n') {
      throw Fault("unknown format code '" + std::string(1, type) + "' for object of type '" +
                  type_name(value) + "'");
    }
    double d = as_double(value);
    negative = std::signbit(d) && !std::isnan(d);
    d = std::fabs(d);
    if (type == '\0' && precision < 0) {
      body = float_repr(d);
    } else if (type == '\0' || type == 'n') {
      body = c_format_double(d, 'g', precision < 0 ? 6 : std::max(precision, 1), alternate);
      if (type == '\0' && body.find_first_of(".einf") == std::string::npos) body += ".0";
    } else if (type == '%') {
      body = c_format_double(d * 100.0, 'f', precision < 0 ? 6 : precision, alternate) + "%";
    } else {
      body = c_format_double(d, type, precision < 0 ? 6 : precision, alternate);
    }
    if (grouping != '\0') body = group_thousands(body, grouping);
  }
  std::string sign_text;
  if (negative) {
    sign_text = "-";
  } else if (sign == '+') {
    sign_text = "+";
  } else if (sign == ' ') {
    sign_text = " ";
  }
  if (align == '=') {
    const auto len = static_cast<int64_t>(utf8_length(sign_text + body));
    std::string out = sign_text;
    for (int64_t k = len; k < width; ++k) out += fill;
    return out + body;
  }
  return pad(sign_text + body, width, align == '\0' ? '>' : align, fill);
}

}  // namespace

// Python str.format().
std::string python_format(Interp& interp, const std::string& fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  bool used_auto = false;
  bool used_manual = false;
  size_t i = 0;
  while (i < fmt.size()) {
    const char c = fmt[i];
    if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') {
        out.push_back('}');
        i += 2;
        continue;
      }
      throw Fault("single '}' encountered in format string");
    }
    if (c != '{') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out.push_back('{');
      i += 2;
      continue;
    }
    const size_t close = fmt.find('}', i);
    if (close == std::string::npos) throw Fault("single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    i = close + 1;
    std::string spec;
    if (const size_t colon = field.find(':'); colon != std::string::npos) {
      spec = field.substr(colon + 1);
      field.resize(colon);
    }
    char conversion = '\0';
    if (const size_t bang = field.find('!'); bang != std::string::npos) {
      if (bang + 2 != field.size()) throw Fault("invalid conversion in format string");
      conversion = field[bang + 1];
      field.resize(bang);
    }
    // Split "name.attr[key]" into the head and accessors.
    size_t head_end = field.find_first_of(".[");
    const std::string head = field.substr(0, head_end);
    Value value;
    if (head.empty()) {
      if (used_manual) {
        throw Fault("cannot switch from manual field specification to automatic field numbering");
      }
      used_auto = true;
      if (auto_index >= args.positional.size()) throw Fault("replacement index out of range");
      value = args.positional[auto_index++];
    } else if (std::all_of(head.begin(), head.end(), [](char d) { return d >= '0' && d <= '9'; })) {
      if (used_auto) {
        throw Fault("cannot switch from automatic field numbering to manual field specification");
      }
      used_manual = true;
      const size_t index = head.size() > 6 ? SIZE_MAX : std::stoul(head);
      if (index >= args.positional.size()) throw Fault("replacement index out of range");
      value = args.positional[index];
    } else {
      bool found = false;
      for (const auto& [key, v] : args.keyword) {
        if (key == head) {
          value = v;
          found = true;
        }
      }
      if (!found) throw Fault("format string refers to missing keyword '" + head + "'");
    }
    while (head_end != std::string::npos && head_end < field.size()) {
      if (field[head_end] == '.') {
        const size_t next = field.find_first_of(".[", head_end + 1);
        value = interp.getattr(value, field.substr(head_end + 1, next - head_end - 1));
        head_end = next;
      } else {
        const size_t end = field.find(']', head_end);
        if (end == std::string::npos) throw Fault("missing ']' in format string");
        const std::string key = field.substr(head_end + 1, end - head_end - 1);
        const bool numeric =
            !key.empty() && key.size() < 18 &&
            std::all_of(key.begin(), key.end(), [](char d) { return d >= '0' && d <= '9'; });
        value =
            interp.getitem(value, numeric ? Value::integer(std::stoll(key)) : Value::string(key));
        head_end = end + 1;
      }
    }
    if (conversion == 'r' || conversion == 'a') {
      value = Value::string(repr(value));
    } else if (conversion == 's') {
      value = Value::string(to_str(value));
    } else if (conversion != '\0') {
      throw Fault(std::string("unknown conversion specifier ") + conversion);
    }
    out += format_with_spec(value, spec);
    interp.check_size(out.size());
  }
  return out;
}

// Python printf-style formatting: fmt % args.
std::string percent_format(Interp& interp, const std::string& fmt, const Value& rhs) {
  std::vector<Value> values;
  const bool is_tuple = rhs.kind == Kind::kTuple;
  if (is_tuple) {
    values = rhs.items().values;
  } else {
    values.push_back(rhs);
  }
  size_t next_value = 0;
  bool used_mapping = false;
  std::string out;
  size_t i = 0;
  while (i < fmt.size()) {
    if (fmt[i] != '%') {
      out.push_back(fmt[i++]);
      continue;
    }
    ++i;
    if (i >= fmt.size()) throw Fault("incomplete format");
    Value value;
    bool have_value = false;
    if (fmt[i] == '(') {
      const size_t close = fmt.find(')', i);
      if (close == std::string::npos) throw Fault("incomplete format key");
      if (rhs.kind != Kind::kDict) throw Fault("format requires a mapping");
      const Value* found = rhs.entries().find(std::string_view(fmt).substr(i + 1, close - i - 1));
      if (found == nullptr)
        throw Fault("format key '" + fmt.substr(i + 1, close - i - 1) + "' missing");
      value = *found;
      have_value = true;
      used_mapping = true;
      i = close + 1;
    }
    std::string flags;
    while (i < fmt.size() && std::string_view("-+ #0").find(fmt[i]) != std::string_view::npos) {
      flags.push_back(fmt[i++]);
    }
    const auto take_value = [&]() -> Value {
      if (next_value >= values.size()) throw Fault("not enough arguments for format string");
      return values[next_value++];
    };
    int64_t width = 0;
    if (i < fmt.size() && fmt[i] == '*') {
      width = std::clamp<int64_t>(int_arg(take_value(), "%*"), -(1 << 20), 1 << 20);
      if (width < 0) {  // Python: a negative * width left-justifies
        flags.push_back('-');
        width = -width;
      }
      ++i;
    } else {
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
        width = std::min<int64_t>(width * 10 + (fmt[i++] - '0'), 1 << 20);
      }
    }
    int precision = -1;
    if (i < fmt.size() && fmt[i] == '.') {
      ++i;
      precision = 0;
      while (i < fmt.size() && fmt[i] >= '0' && fmt[i] <= '9') {
        precision = std::min(precision * 10 + (fmt[i++] - '0'), 1000);
      }
    }
    while (i < fmt.size() && (fmt[i] == 'h' || fmt[i] == 'l' || fmt[i] == 'L')) ++i;
    if (i >= fmt.size()) throw Fault("incomplete format");
    const char type = fmt[i++];
    if (type == '%') {
      out.push_back('%');
      continue;
    }
    if (!have_value) value = take_value();
    const bool left = flags.find('-') != std::string::npos;
    const bool zero = flags.find('0') != std::string::npos && !left;
    const bool alternate = flags.find('#') != std::string::npos;
    const char sign_flag = flags.find('+') != std::string::npos   ? '+'
                           : flags.find(' ') != std::string::npos ? ' '
                                                                  : '\0';
    std::string body;
    bool numeric = true;
    bool negative = false;
    switch (type) {
      case 's':
      case 'r':
      case 'a':
        body = type == 's' ? to_str(value) : repr(value);
        if (precision >= 0) {
          const std::vector<size_t> offsets = utf8_offsets(body);
          if (static_cast<size_t>(precision) + 1 < offsets.size()) {
            body.resize(offsets[static_cast<size_t>(precision)]);
          }
        }
        numeric = false;
        break;
      case 'c':
        if (value.is_string()) {
          body = value.str();
        } else {
          utf8_append(body, static_cast<uint32_t>(int_arg(value, "%c") & 0x1fffff));
        }
        numeric = false;
        break;
      case 'd':
      case 'i':
      case 'u':
      case 'x':
      case 'X':
      case 'o': {
        int64_t iv = 0;
        if (!as_integer(value, &iv)) {
          if (value.kind != Kind::kFloat || !std::isfinite(value.as_float()) ||
              std::fabs(value.as_float()) >= 9.2e18) {
            throw Fault(std::string("%") + type + " format: a real number is required, not " +
                        type_name(value));
          }
          iv = static_cast<int64_t>(value.as_float());
        }
        negative = iv < 0;
        const int base = type == 'x' || type == 'X' ? 16 : type == 'o' ? 8 : 10;
        body = int_in_base(iv, base, type == 'X');
        if (negative) body.erase(0, 1);
        if (alternate && base != 10) body = std::string("0") + (base == 8 ? 'o' : type) + body;
        if (precision > 0 && static_cast<int>(body.size()) < precision) {
          body.insert(0, static_cast<size_t>(precision) - body.size(), '0');
        }
        break;
      }
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G': {
        if (!value.is_number()) {
          throw Fault(std::string("must be real number, not ") + type_name(value));
        }
        const double d = as_double(value);
        negative = std::signbit(d) && !std::isnan(d);
        body = c_format_double(std::fabs(d), type, precision < 0 ? 6 : precision, alternate);
        break;
      }
      default:
        throw Fault(std::string("unsupported format character '") + type + "'");
    }
    std::string sign_text;
    if (numeric) {
      if (negative) {
        sign_text = "-";
      } else if (sign_flag != '\0') {
        sign_text = std::string(1, sign_flag);
      }
    }
    const auto len = static_cast<int64_t>(utf8_length(sign_text) + utf8_length(body));
    if (width > len) {
      const auto fill = static_cast<size_t>(width - len);
      if (left) {
        body = sign_text + body + std::string(fill, ' ');
      } else if (zero && numeric) {
        body = sign_text + std::string(fill, '0') + body;
      } else {
        body = std::string(fill, ' ') + sign_text + body;
      }
    } else {
      body = sign_text + body;
    }
    out += body;
    interp.check_size(out.size());
  }
  // Python only complains about unused arguments for tuples and plain values: a list or dict on
  // the right counts as a mapping ('' % [] is '').
  const bool mapping_like = rhs.kind == Kind::kDict || rhs.kind == Kind::kList;
  if (!used_mapping && !mapping_like && next_value < values.size()) {
    throw Fault("not all arguments converted during string formatting");
  }

  return out;
}

// --- numeric helpers ---------------------------------------------------------------------------

bool parse_python_int(std::string_view text, int base, int64_t* out) {
  std::string s = python_strip(std::string(text), nullptr, true, true);
  bool negative = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) negative = s[i++] == '-';
  if (i + 1 < s.size() && s[i] == '0') {
    const char p = static_cast<char>(s[i + 1] | 0x20);
    const int prefixed = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (prefixed != 0 && (base == 0 || base == prefixed)) {
      base = prefixed;
      i += 2;
      if (i < s.size() && s[i] == '_') ++i;
    }
  }
  if (base == 0) base = 10;
  if (base < 2 || base > 36 || i >= s.size()) return false;
  uint64_t value = 0;
  bool any = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_' && any && i + 1 < s.size() && s[i + 1] != '_') continue;
    int d = -1;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'z') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'Z') {
      d = c - 'A' + 10;
    }
    if (d < 0 || d >= base) return false;
    if (value > (static_cast<uint64_t>(INT64_MAX) + (negative ? 1 : 0) - static_cast<uint64_t>(d)) /
                    static_cast<uint64_t>(base)) {
      return false;
    }
    value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
    any = true;
  }
  if (!any) return false;
  *out = negative ? static_cast<int64_t>(0 - value) : static_cast<int64_t>(value);
  return true;
}

bool parse_python_float(std::string_view text, double* out) {
  std::string s = python_strip(std::string(text), nullptr, true, true);
  std::string cleaned;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_') {
      if (i == 0 || i + 1 >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i - 1])) ||
          !std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        return false;
      }
      continue;
    }
    if (c == 'x' || c == 'X' || c == 'p' || c == 'P' || c == '(') return false;
    cleaned.push_back(c);
  }
  if (cleaned.empty()) return false;
  const std::string lower = to_lower(cleaned);
  const std::string_view unsigned_part = (lower[0] == '+' || lower[0] == '-')
                                             ? std::string_view(lower).substr(1)
                                             : std::string_view(lower);
  if (unsigned_part == "inf" || unsigned_part == "infinity" || unsigned_part == "nan") {
    const double v = unsigned_part == "nan" ? std::nan("") : HUGE_VAL;
    *out = lower[0] == '-' ? -v : v;
    return true;
  }
  if (std::isalpha(static_cast<unsigned char>(unsigned_part.empty() ? 'x' : unsigned_part[0]))) {
    return false;
  }
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(cleaned.c_str(), &end);
  if (end != cleaned.c_str() + cleaned.size()) return false;
  *out = v;
  return true;
}

// Python round(x, ndigits) on a double: round-half-even on the exact binary value.
double python_round(double x, int64_t ndigits) {
  if (!std::isfinite(x)) return x;
  if (ndigits > 300) return x;
  if (ndigits < -308) return 0.0 * x;
  if (ndigits >= 0) {
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(ndigits), x);
    return std::strtod(buf, nullptr);
  }
  const double scale = std::pow(10.0, static_cast<double>(-ndigits));
  return std::nearbyint(x / scale) * scale;
}

double float_floor_div(double a, double b, double* mod_out) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0.0) {
    if ((b < 0) != (mod < 0)) {
      mod += b;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, b);
  }
  double floordiv = 0.0;
  if (div != 0.0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, a / b);
  }
  if (mod_out != nullptr) *mod_out = mod;
  return floordiv;
}

}  // namespace ug::jinja
