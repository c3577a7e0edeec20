#include "cli/args.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "util/error.h"

namespace ug::cli {

Args::Args(int argc, char** argv, int first, const std::vector<std::string>& flags) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() > 1 && a[0] == '-' && !(a.size() > 1 && (std::isdigit(a[1]) || a[1] == '.'))) {
      std::string value;
      const size_t eq = a.find('=');
      if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
        value = a.substr(eq + 1);
        a = a.substr(0, eq);
      } else if (std::find(flags.begin(), flags.end(), a) == flags.end()) {
        if (i + 1 >= argc) throw Error("option " + a + ": missing value");
        value = argv[++i];
      } else {
        value = "1";
      }
      values_.emplace(a, value);
    } else {
      positional_.push_back(a);
    }
  }
}

bool Args::has(const std::string& name) const {
  return values_.count(name) > 0;
}

std::string Args::get(const std::vector<std::string>& names, const std::string& def) const {
  for (const auto& n : names) {
    auto it = values_.find(n);
    if (it != values_.end()) return it->second;
  }
  return def;
}

std::vector<std::string> Args::get_all(const std::string& name) const {
  std::vector<std::string> out;
  const auto [begin, end] = values_.equal_range(name);
  for (auto it = begin; it != end; ++it) out.push_back(it->second);
  return out;
}

int Args::get_int(const std::vector<std::string>& names, int def) const {
  const std::string v = get(names);
  if (v.empty()) return def;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (errno || end == v.c_str() || *end || x < -2147483647L || x > 2147483647L) {
    throw Error("option " + names.front() + ": '" + v + "' is not an integer");
  }
  return int(x);
}

double Args::get_double(const std::vector<std::string>& names, double def) const {
  const std::string v = get(names);
  if (v.empty()) return def;
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end)
    throw Error("option " + names.front() + ": '" + v + "' is not a number");
  return x;
}

void Args::reject_unknown(const std::vector<std::string>& known) const {
  for (const auto& [k, v] : values_) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      throw Error("unknown option " + k + " (see unigemma help)");
    }
  }
}

}  // namespace ug::cli
