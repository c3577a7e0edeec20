// A file written under "<path>.tmp" and renamed into place only after a complete, flushed write;
// destroyed without commit() it removes the temporary file, so no partial file is ever left under
// the final name.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "util/error.h"

namespace ug {

class TempFile {
 public:
  explicit TempFile(const std::string& final_path) : final_(final_path), tmp_(final_path + ".tmp") {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) throw Error(final_ + ": cannot create " + tmp_ + ": " + std::strerror(errno));
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  }
  ~TempFile() {
    if (f_) std::fclose(f_);
    if (!committed_) std::remove(tmp_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* data, size_t n) {
    if (n && std::fwrite(data, 1, n, f_) != n) fail("write failed");
  }
  void write_zeros(size_t n) {
    static const uint8_t kZeros[256] = {};
    while (n > 0) {
      const size_t k = std::min(n, sizeof(kZeros));
      write(kZeros, k);
      n -= k;
    }
  }
  void commit() {
    if (std::fflush(f_) != 0) fail("flush failed");
    if (::fsync(fileno(f_)) != 0) fail("fsync failed");
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) fail("close failed");
    if (std::rename(tmp_.c_str(), final_.c_str()) != 0)
      fail("cannot rename " + tmp_ + " into place");
    committed_ = true;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw Error(final_ + ": " + what + ": " + std::strerror(errno));
  }
  std::string final_;
  std::string tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

}  // namespace ug
