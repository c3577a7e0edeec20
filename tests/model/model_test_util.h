// Helpers for model tests: oracle records and GGUF copies with one thing changed.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "test_support.h"

namespace ug::test {

inline nlohmann::json find_text_case(const std::string& oracle, const std::string& set,
                                     const std::string& variant, const std::string& id) {
  std::ifstream in(oracle + "/text/cases-" + set + ".jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["variant"] == variant && j["case"] == id) return j;
  }
  ADD_FAILURE() << "case not found: " << set << "/" << variant << "/" << id;
  return {};
}

inline std::vector<float> read_floats(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const auto size = in.tellg();
  std::vector<float> v(size_t(size) / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  return v;
}

inline double max_abs_diff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

// Copies a GGUF, letting `edit_kv` change metadata and `edit_tensor` rename/retype/reshape/drop
// tensors (return false to drop). Tensor data are copied as they are (sized by the new type/shape).
struct TensorEdit {
  std::string name;
  TensorType type;
  std::vector<int64_t> ne;
};
inline void copy_gguf(const std::string& src, const std::string& dst,
                      const std::function<void(gguf::Writer&)>& edit_kv,
                      const std::function<bool(TensorEdit&)>& edit_tensor) {
  auto f = gguf::File::open(src);
  gguf::Writer w(f->alignment());
  for (const auto& kv : f->metadata()) w.set(kv.key, kv.value);
  if (edit_kv) edit_kv(w);
  for (const auto& t : f->tensors()) {
    TensorEdit e{t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims)};
    if (edit_tensor && !edit_tensor(e)) continue;
    const uint8_t* data = t.data;
    const uint64_t have = t.n_bytes;
    w.add_tensor(e.name, e.type, e.ne, [data, have](uint8_t* out, uint64_t n) {
      std::memcpy(out, data, std::min(n, have));
      if (n > have) std::memset(out + have, 0, n - have);
    });
  }
  w.write(dst);
}

inline std::string temp_path(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "unigemma-tests";
  std::filesystem::create_directories(dir);
  return (dir / (std::to_string(::getpid()) + "-" + name)).string();
}

}  // namespace ug::test
