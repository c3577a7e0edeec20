// Reader for Hugging Face safetensors: one file (8-byte little-endian header length, JSON header,
// raw data) or a model folder with `model.safetensors` or a sharded
// `model.safetensors.index.json`. Files are mapped read-only; tensors are zero-copy views.
// Format: https://huggingface.co/docs/safetensors (header entries {dtype, shape, data_offsets}).
//
// Every length, offset and size is validated against the file before use; problems throw ug::Error
// with one line naming the file and the tensor or field.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "format/tensor_type.h"

namespace ug {

struct StTensor {
  std::string name;
  std::string dtype;           // as written in the header: "F32", "BF16", "I64", ...
  std::vector<int64_t> shape;  // Hugging Face order, e.g. [out, in] for a linear weight
  // View into the mapping. Not necessarily aligned to the element size (safetensors does not pad
  // between tensors): read through memcpy or byte loads.
  const uint8_t* data = nullptr;
  uint64_t n_bytes = 0;
  std::string file;  // the file holding it, for error messages

  int64_t n_elements() const;
  // F32, F16 and BF16 are supported; other dtypes parse but cannot be used.
  bool supported() const;
  // The matching ug::TensorType; throws ug::Error "<file>: tensor '<name>': dtype I64 is not
  // supported (F32, F16, BF16 are)" for the others.
  TensorType tensor_type() const;
};

// Bytes per element of a safetensors dtype name; 0 when the name is unknown.
int64_t st_dtype_size(std::string_view dtype);
// F32/F16/BF16 -> TensorType; false for every other dtype.
bool st_dtype_to_tensor_type(std::string_view dtype, TensorType* out);

class SafetensorsFile {
 public:
  // Maps and parses one .safetensors file.
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);
  // Parses an in-memory image (fuzzing, tests). `bytes` must outlive the object.
  static std::unique_ptr<SafetensorsFile> from_memory(const uint8_t* bytes, size_t size,
                                                      const std::string& name);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return size_; }
  uint64_t data_offset() const { return data_offset_; }  // 8 + header length
  // String entries of the optional "__metadata__" object.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Sorted by name.
  const std::vector<StTensor>& tensors() const { return tensors_; }
  const StTensor* find(std::string_view name) const;
  // Drops the whole pages inside [data, data + n) from the mapping after a streaming read (see
  // gguf::File::release). No-op for in-memory images.
  void release(const uint8_t* data, uint64_t n) const;

 private:
  SafetensorsFile() = default;
  void parse();

  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  bool owns_mapping_ = false;
  uint64_t data_offset_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<StTensor> tensors_;
};

// A Hugging Face model folder: `model.safetensors`, or `model.safetensors.index.json` whose
// "weight_map" names the shard holding each tensor. One lookup by name across all shards; with an
// index, the weight_map is authoritative (shard tensors it does not list are not visible).
class SafetensorsModel {
 public:
  // `path` is a folder as above, or a single .safetensors file.
  static std::unique_ptr<SafetensorsModel> open(const std::string& path);

  const std::string& path() const { return path_; }
  const StTensor* find(std::string_view name) const;
  // Throws ug::Error "<path>: tensor '<name>': not found".
  const StTensor& get(std::string_view name) const;
  size_t size() const { return by_name_.size(); }
  std::vector<std::string> tensor_names() const;  // sorted
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }

 private:
  SafetensorsModel() = default;

  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const StTensor*, std::less<>> by_name_;
};

// Streaming safetensors writer (synthetic HF folders, tests). Tensors are written in the order
// added, each through a producer that emits its bytes in pieces; the file goes to "<path>.tmp" and
// is renamed into place after a complete write.
class SafetensorsWriter {
 public:
  using Emit = std::function<void(const void* data, uint64_t n)>;
  using Producer = std::function<void(const Emit& emit)>;
  // `shape` in HF order; dtype "F32", "F16", "BF16", ...
  void add(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape,
           Producer producer);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  void write(const std::string& path);

 private:
  struct Pending {
    std::string name, dtype;
    std::vector<int64_t> shape;
    uint64_t n_bytes;
    Producer producer;
  };
  std::vector<Pending> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace ug
