// Python str / number behaviour used by the Jinja builtins (internal to the interpreter).
// Strings are UTF-8; positions and lengths that Python counts in code points are converted.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja_value.h"

namespace ug::jinja {

class Interp;
struct CallArgs;

// Argument checks for builtins: the value as int64 / str, or a Fault naming `what`.
int64_t int_arg(const Value& v, std::string_view what);
std::string str_arg(const Value& v, std::string_view what);

bool ascii_alpha(unsigned char c);
std::vector<uint32_t> code_points(std::string_view s);
// Byte offset -> Python (code point) index.
size_t code_point_index(const std::string& s, size_t byte_offset);
// Byte range [*begin, *end) of the code point slice [start, end) (Python negatives/clamping).
void byte_range(const std::string& s, const Value* start_v, const Value* end_v, size_t* begin,
                size_t* end);

// str.upper / lower / swapcase / capitalize / title, and jinja2's title filter (words start after
// '-', whitespace and opening brackets).
std::string to_upper(const std::string& s);
std::string to_lower(const std::string& s);
std::string swapcase(const std::string& s);
std::string capitalize(const std::string& s);
std::string python_title(const std::string& s);
std::string jinja_title(const std::string& s);

// str.strip / lstrip / rstrip; `chars` null (or None) strips Unicode whitespace.
std::string python_strip(const std::string& s, const Value* chars, bool left, bool right);
// str.split / rsplit; `sep` null (or None) splits on runs of whitespace. maxsplit < 0: no limit.
std::vector<std::string> python_split(const std::string& s, const Value* sep, int64_t maxsplit,
                                      bool from_right);
std::vector<std::string> python_splitlines(const std::string& s, bool keepends);
// str.replace; count < 0 replaces all.
std::string python_replace(const std::string& s, const std::string& old, const std::string& with,
                           int64_t count);
std::string html_escape(const std::string& s);
// Pads to `width` code points with `fill`; align is '<', '>' or '^'.
std::string pad(const std::string& s, int64_t width, char align, const std::string& fill);

// str.format(*args, **kwargs) and fmt % rhs (rhs a tuple, a mapping or a single value).
std::string python_format(Interp& interp, const std::string& fmt, const CallArgs& args);
std::string percent_format(Interp& interp, const std::string& fmt, const Value& rhs);

// int(text, base) and float(text); false when Python would raise ValueError.
bool parse_python_int(std::string_view text, int base, int64_t* out);
bool parse_python_float(std::string_view text, double* out);
// round(x, ndigits) with Python's round-half-even on the exact binary value.
double python_round(double x, int64_t ndigits);
// Python float // and %: returns the floor quotient, stores the modulo in *mod_out.
double float_floor_div(double a, double b, double* mod_out);

}  // namespace ug::jinja
