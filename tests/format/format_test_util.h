// Helpers for the format tests: temporary folders, raw byte builders for crafting broken files,
// and error-message checks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util/error.h"

namespace ug::test {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name =
        "ug_format_" + std::to_string(::getpid()) + "_" + std::to_string(counter.fetch_add(1));
    if (info) name += std::string("_") + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Little-endian byte builder for hand-made (usually broken) files.
struct Bytes {
  std::vector<uint8_t> v;

  Bytes& raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    v.insert(v.end(), b, b + n);
    return *this;
  }
  Bytes& u8(uint8_t x) { return raw(&x, 1); }
  Bytes& u16(uint16_t x) { return raw(&x, 2); }
  Bytes& u32(uint32_t x) { return raw(&x, 4); }
  Bytes& u64(uint64_t x) { return raw(&x, 8); }
  Bytes& f32(float x) { return raw(&x, 4); }
  Bytes& str(const std::string& s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  Bytes& zeros(size_t n) {
    v.insert(v.end(), n, 0);
    return *this;
  }
  Bytes& pad_to(size_t alignment) {
    while (v.size() % alignment) v.push_back(0);
    return *this;
  }
  size_t size() const { return v.size(); }
};

// Runs f; returns the ug::Error message, or a marker that makes any substring check fail.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ug::Error& e) {
    // UG_TEST_PRINT_ERRORS=1 shows every message, to review their wording.
    if (const char* env = std::getenv("UG_TEST_PRINT_ERRORS"); env && *env == '1') {
      std::printf("  error: %s\n", e.what());
    }
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not a ug::Error: ") + e.what() + ">";
  }
  return "<no error>";
}

// The message must be one line and contain every fragment.
inline void expect_message(const std::string& msg, std::initializer_list<std::string> fragments) {
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "multi-line message: " << msg;
  EXPECT_EQ(msg.rfind("<", 0), std::string::npos) << msg;
  for (const std::string& f : fragments) {
    EXPECT_NE(msg.find(f), std::string::npos) << "expected '" << f << "' in: " << msg;
  }
}

// A safetensors image: 8-byte header length, JSON header, then the data section.
struct StEntry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;
};

inline std::vector<uint8_t> make_safetensors(const std::vector<StEntry>& entries,
                                             const nlohmann::json& metadata = nullptr) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<uint8_t> data;
  for (const StEntry& e : entries) {
    header[e.name] = {{"dtype", e.dtype},
                      {"shape", e.shape},
                      {"data_offsets", {data.size(), data.size() + e.data.size()}}};
    data.insert(data.end(), e.data.begin(), e.data.end());
  }
  if (!metadata.is_null()) header["__metadata__"] = metadata;
  std::string text = header.dump();
  while (text.size() % 8) text += ' ';  // the format allows trailing spaces; keeps data aligned
  Bytes b;
  b.u64(text.size());
  b.raw(text.data(), text.size());
  b.raw(data.data(), data.size());
  return b.v;
}

// A safetensors image with a hand-written header text.
inline std::vector<uint8_t> make_safetensors_raw(const std::string& header_text,
                                                 size_t data_bytes) {
  Bytes b;
  b.u64(header_text.size());
  b.raw(header_text.data(), header_text.size());
  b.zeros(data_bytes);
  return b.v;
}

inline std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 4);
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

// Deterministic bytes 0, 1, 2, ... (mod 251) so any misplaced view shows up.
inline std::vector<uint8_t> pattern_bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = uint8_t((i * 7 + seed) % 251);
  return out;
}

}  // namespace ug::test
