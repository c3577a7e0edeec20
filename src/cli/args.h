// Minimal command-line option parsing shared by the subcommands.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace ug::cli {

// Parses "--name value", "--name=value", "-x value" and boolean flags. `flags` lists options that
// take no value; everything else after a dash takes one. Positional arguments are kept in order.
class Args {
 public:
  Args(int argc, char** argv, int first, const std::vector<std::string>& flags);

  bool has(const std::string& name) const;
  // Value of the first of `names` present (e.g. {"-m", "--model"}), or `def`.
  std::string get(const std::vector<std::string>& names, const std::string& def = "") const;
  // Every value of a repeatable option, in command-line order.
  std::vector<std::string> get_all(const std::string& name) const;
  int get_int(const std::vector<std::string>& names, int def) const;
  double get_double(const std::vector<std::string>& names, double def) const;
  const std::vector<std::string>& positional() const { return positional_; }
  // Throws ug::Error naming the first option not in `known`.
  void reject_unknown(const std::vector<std::string>& known) const;

 private:
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace ug::cli
