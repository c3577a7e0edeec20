// A one-line progress bar on stderr, drawn only when stderr is a terminal.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace ug::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label)
      : label_(std::move(label)), enabled_(isatty(STDERR_FILENO)) {}
  ~ProgressBar() { done(); }
  // Draws done/total; small jobs (one chunk) are not worth a bar.
  void update(int done, int total) {
    if (!enabled_ || total <= 0 || (!drawn_ && done >= total)) return;
    const int width = 30;
    const int fill = int(int64_t(done) * width / total);
    std::fprintf(stderr, "\r%s [%s%s] %d/%d", label_.c_str(),
                 std::string(size_t(fill), '#').c_str(),
                 std::string(size_t(width - fill), ' ').c_str(), done, total);
    std::fflush(stderr);
    drawn_ = true;
  }
  void done() {
    if (drawn_) std::fprintf(stderr, "\r\x1b[2K");
    drawn_ = false;
  }

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
};

}  // namespace ug::cli
