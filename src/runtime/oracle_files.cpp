#include "runtime/oracle_files.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "util/error.h"

namespace ug {

void OracleDiff::merge(const OracleDiff& o) {
  max_abs = std::max(max_abs, o.max_abs);
  mean_abs = std::max(mean_abs, o.mean_abs);
}

OracleDiff oracle_diff(const float* a, const float* b, size_t n) {
  OracleDiff d;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = std::fabs(double(a[i]) - double(b[i]));
    d.max_abs = std::max(d.max_abs, std::isnan(e) ? INFINITY : e);
    sum += e;
  }
  d.mean_abs = n ? sum / double(n) : 0;
  return d;
}

std::vector<float> read_reference_f32(const std::filesystem::path& p, size_t expected, bool exact) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error(p.string() + ": cannot open reference file");
  std::vector<float> v(expected);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(expected * sizeof(float)));
  if (size_t(in.gcount()) != expected * sizeof(float) || (exact && in.peek() != EOF)) {
    throw Error(p.string() + ": expected " + std::string(exact ? "" : "at least ") +
                std::to_string(expected) + " float32 values");
  }
  return v;
}

}  // namespace ug
