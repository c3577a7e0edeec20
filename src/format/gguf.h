// GGUF v3 (also reads v2) reader over a read-only mmap, and a streaming writer.
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
//
// The reader validates every count, length, offset and size against the file length before use and
// throws ug::Error with one line naming the file and the field. Tensor data are zero-copy views
// into the mapping, valid as long as the File lives.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/tensor_type.h"

namespace ug::gguf {

enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
const char* value_type_name(ValueType t);

// One metadata value. Scalars use exactly one of i/u/f/b/s by type; arrays keep their elements in
// typed vectors (ints for all integer types and bools, floats for F32/F64, strs for strings,
// arr for nested arrays) so a 262144-entry vocabulary costs one vector, not 262144 Values.
struct Value {
  ValueType type = ValueType::U8;
  ValueType elem_type = ValueType::U8;  // arrays only
  int64_t i = 0;                        // signed integer types and BOOL
  uint64_t u = 0;                 // unsigned integer types (also mirrored into i when it fits)
  double f = 0;                   // F32 / F64
  std::string s;                  // STRING
  std::vector<int64_t> ints;      // array of integer/bool
  std::vector<double> floats;     // array of F32/F64
  std::vector<std::string> strs;  // array of STRING
  std::vector<Value> arr;         // array of ARRAY
  uint64_t array_size() const;
};

struct KeyValue {
  std::string key;
  Value value;
};

struct TensorInfo {
  std::string name;
  uint32_t raw_type = 0;  // as stored; may be unsupported (checked by the model loader)
  TensorType type = TensorType::F32;
  int n_dims = 0;
  std::array<int64_t, 4> ne = {1, 1, 1, 1};  // ggml order: ne[0] is the contiguous (input) dim
  uint64_t offset = 0;                       // absolute byte offset in the file
  uint64_t n_bytes = 0;                      // validated: offset + n_bytes <= file size
  const uint8_t* data = nullptr;             // view into the mapping
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class File {
 public:
  // Maps and parses `path`. Throws ug::Error on any structural problem.
  static std::unique_ptr<File> open(const std::string& path);
  // Parses an in-memory image (fuzzing, tests). `bytes` must outlive the File.
  static std::unique_ptr<File> from_memory(const uint8_t* bytes, size_t size,
                                           const std::string& name);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t file_size() const { return size_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }

  const std::vector<KeyValue>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }

  // Typed getters: throw ug::Error "<file>: metadata '<key>': missing" / "...: expected X, got Y".
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;   // any integer type or BOOL
  double get_float(std::string_view key) const;  // any numeric type
  bool get_bool(std::string_view key) const;
  std::vector<int64_t> get_int_array(std::string_view key) const;   // ints/bools
  std::vector<double> get_float_array(std::string_view key) const;  // any numeric elements
  const std::vector<std::string>& get_string_array(std::string_view key) const;

  std::optional<std::string> opt_string(std::string_view key) const;
  std::optional<int64_t> opt_int(std::string_view key) const;
  std::optional<double> opt_float(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

  // Drops the whole pages inside [data, data + n) from this process's mapping once a streaming
  // reader is done with them (they are re-read from the file if touched again), so reading a
  // file much larger than RAM keeps the resident set small. No-op for in-memory images.
  void release(const uint8_t* data, uint64_t n) const;

 private:
  File() = default;
  void parse();

  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  bool owns_mapping_ = false;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<KeyValue> kv_;
  std::vector<TensorInfo> tensors_;
};

// Streaming GGUF v3 writer. Metadata and tensor descriptions are collected first; write() then
// emits the header and calls each tensor's producer in order, so a 7 GB model never sits in memory.
// The output goes to "<path>.tmp" and is renamed into place only after a complete, flushed write;
// on failure the temporary file is removed (no partial file is left looking complete).
class Writer {
 public:
  explicit Writer(uint32_t alignment = 32) : alignment_(alignment) {}

  void set(const std::string& key, const Value& value);  // replaces an existing key, keeps order
  void set_string(const std::string& key, const std::string& v);
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string_array(const std::string& key, std::vector<std::string> v);
  void set_i32_array(const std::string& key, const std::vector<int32_t>& v);
  void set_f32_array(const std::string& key, const std::vector<float>& v);
  void set_bool_array(const std::string& key, const std::vector<bool>& v);

  // Produces exactly n_bytes of tensor data into `out` (called once, during write()).
  using Producer = std::function<void(uint8_t* out, uint64_t n_bytes)>;
  // `ne` in ggml order (ne[0] contiguous). n_bytes is derived from type and shape.
  void add_tensor(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                  Producer producer);
  // Streaming variant: the producer hands the tensor's bytes over in pieces through `emit`
  // (any number of calls, n_bytes in total, checked), so a tensor never needs one buffer.
  using Emit = std::function<void(const void* data, uint64_t n)>;
  using StreamProducer = std::function<void(const Emit& emit)>;
  void add_tensor_stream(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                         StreamProducer producer);
  // Convenience: copies `data` (must be the right size) at write time.
  void add_tensor_bytes(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                        const void* data);

  // Throws ug::Error on I/O failure.
  void write(const std::string& path);

 private:
  struct PendingTensor {
    std::string name;
    TensorType type;
    std::vector<int64_t> ne;
    uint64_t n_bytes;
    Producer producer;
    StreamProducer stream;
  };
  uint32_t alignment_;
  std::vector<KeyValue> kv_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace ug::gguf
