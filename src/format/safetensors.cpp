#include "format/safetensors.h"
#include "format/temp_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "util/error.h"

static_assert(std::endian::native == std::endian::little,
              "the safetensors reader maps little-endian files directly");

namespace ug {

namespace {

using nlohmann::json;

// The reference implementation refuses headers above 100 MB; a 12B checkpoint's header is ~200 KB.
// A lower cap bounds the JSON tree nlohmann builds (several times the text size) for hostile input.
constexpr uint64_t kMaxHeaderBytes = 32ull << 20;
// Real headers nest three levels ({name: {shape: [..]}}); deeper input only costs memory.
constexpr int kMaxJsonDepth = 8;
constexpr uint64_t kMaxIndexBytes = 64ull << 20;

struct DtypeRow {
  const char* name;
  int64_t size;
};
// Element sizes from the safetensors format description.
constexpr DtypeRow kDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
    {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
};

// Names come from the file: keep error messages on one printable line.
std::string printable(std::string_view s, size_t max_len = 96) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_len; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max_len) out += "...";
  return out;
}

std::string json_kind(const json& j) {
  return j.type_name();
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Parses JSON and rejects duplicate keys in any object (nlohmann would silently keep one).
json parse_json_strict(const char* begin, const char* end, const std::string& where,
                       const std::string& path) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      throw Error(path + ": " + where + ": JSON nested deeper than " +
                  std::to_string(kMaxJsonDepth) + " levels");
    }
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty() && duplicate.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) duplicate = key;
    }
    return true;
  };
  json j;
  try {
    j = json::parse(begin, end, cb);
  } catch (const json::parse_error& e) {
    std::string detail = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " tag.
    if (const size_t cut = detail.find("] "); cut != std::string::npos) detail.erase(0, cut + 2);
    throw Error(path + ": " + where + ": not valid JSON at byte " + std::to_string(e.byte) + ": " +
                printable(detail, 240));
  }
  if (!duplicate.empty()) {
    throw Error(path + ": " + where + ": duplicate key '" + printable(duplicate) + "'");
  }
  return j;
}

bool read_uint(const json& j, uint64_t* out) {
  if (!j.is_number_unsigned()) return false;
  *out = j.get<uint64_t>();
  return true;
}

}  // namespace

int64_t st_dtype_size(std::string_view dtype) {
  for (const DtypeRow& r : kDtypes) {
    if (dtype == r.name) return r.size;
  }
  return 0;
}

bool st_dtype_to_tensor_type(std::string_view dtype, TensorType* out) {
  if (dtype == "F32") {
    *out = TensorType::F32;
  } else if (dtype == "F16") {
    *out = TensorType::F16;
  } else if (dtype == "BF16") {
    *out = TensorType::BF16;
  } else {
    return false;
  }
  return true;
}

int64_t StTensor::n_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated not to overflow when parsed
  return n;
}

bool StTensor::supported() const {
  TensorType t;
  return st_dtype_to_tensor_type(dtype, &t);
}

TensorType StTensor::tensor_type() const {
  TensorType t;
  if (!st_dtype_to_tensor_type(dtype, &t)) {
    throw Error(file + ": tensor '" + printable(name) + "': dtype " + printable(dtype) +
                " is not supported (F32, F16, BF16 are)");
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// One file

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->size_ = uint64_t(st.st_size);
  if (f->size_ > 0) {
    void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw Error(path + ": cannot map " + std::to_string(f->size_) +
                  " bytes: " + std::strerror(err));
    }
    f->base_ = static_cast<const uint8_t*>(p);
    f->owns_mapping_ = true;
  }
  ::close(fd);  // the mapping keeps the file alive
  f->parse();
  return f;
}

std::unique_ptr<SafetensorsFile> SafetensorsFile::from_memory(const uint8_t* bytes, size_t size,
                                                              const std::string& name) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = name;
  f->base_ = bytes;
  f->size_ = bytes ? size : 0;
  f->parse();
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (owns_mapping_ && base_) ::munmap(const_cast<uint8_t*>(base_), size_);
}

void SafetensorsFile::release(const uint8_t* data, uint64_t n) const {
  if (!owns_mapping_ || n == 0 || data < base_ || data + n > base_ + size_) return;
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + n) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void SafetensorsFile::parse() {
  if (size_ < 8) {
    throw Error(path_ + ": header length: file is " + std::to_string(size_) +
                " bytes, too small for the 8-byte header length");
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, base_, 8);
  if (header_len > size_ - 8) {
    throw Error(path_ + ": header length: " + std::to_string(header_len) +
                " bytes claimed but only " + std::to_string(size_ - 8) +
                " bytes follow the 8-byte length field");
  }
  if (header_len > kMaxHeaderBytes) {
    throw Error(path_ + ": header length: " + std::to_string(header_len) +
                " bytes exceeds the limit of " + std::to_string(kMaxHeaderBytes));
  }
  data_offset_ = 8 + header_len;
  const uint64_t data_size = size_ - data_offset_;
  const char* text = reinterpret_cast<const char*>(base_ + 8);
  try {
    const json header = parse_json_strict(text, text + header_len, "header", path_);
    if (!header.is_object()) {
      throw Error(path_ + ": header: expected a JSON object, got " + json_kind(header));
    }
    tensors_.clear();
    metadata_.clear();
    tensors_.reserve(header.size());
    for (const auto& [key, val] : header.items()) {
      if (key == "__metadata__") {
        if (!val.is_object()) {
          throw Error(path_ + ": __metadata__: expected an object, got " + json_kind(val));
        }
        for (const auto& [mk, mv] : val.items()) {
          if (!mv.is_string()) {
            throw Error(path_ + ": __metadata__ '" + printable(mk) + "': expected a string, got " +
                        json_kind(mv));
          }
          metadata_[mk] = mv.get<std::string>();
        }
        continue;
      }
      const std::string where = path_ + ": tensor '" + printable(key) + "': ";
      if (!val.is_object()) throw Error(where + "expected an object, got " + json_kind(val));
      StTensor t;
      t.name = key;
      t.file = path_;

      const auto dtype_it = val.find("dtype");
      if (dtype_it == val.end()) throw Error(where + "dtype: missing");
      if (!dtype_it->is_string()) throw Error(where + "dtype: expected a string");
      t.dtype = dtype_it->get<std::string>();
      const int64_t elem_size = st_dtype_size(t.dtype);
      if (elem_size == 0) throw Error(where + "dtype: unknown dtype '" + printable(t.dtype) + "'");

      const auto shape_it = val.find("shape");
      if (shape_it == val.end()) throw Error(where + "shape: missing");
      if (!shape_it->is_array()) throw Error(where + "shape: expected an array");
      uint64_t n_elems = 1;
      for (const json& d : *shape_it) {
        uint64_t dim = 0;
        if (!read_uint(d, &dim) || dim > uint64_t(std::numeric_limits<int64_t>::max())) {
          throw Error(where + "shape: dimension " + printable(d.dump()) +
                      " is not a non-negative 64-bit integer");
        }
        t.shape.push_back(int64_t(dim));
        if (__builtin_mul_overflow(n_elems, dim, &n_elems) ||
            n_elems > uint64_t(std::numeric_limits<int64_t>::max())) {
          throw Error(where + "shape: element count overflows int64");
        }
      }
      uint64_t expected_bytes = 0;
      if (__builtin_mul_overflow(n_elems, uint64_t(elem_size), &expected_bytes)) {
        throw Error(where + "shape: byte size overflows 64 bits");
      }

      const auto off_it = val.find("data_offsets");
      if (off_it == val.end()) throw Error(where + "data_offsets: missing");
      uint64_t begin = 0, end = 0;
      if (!off_it->is_array() || off_it->size() != 2 || !read_uint((*off_it)[0], &begin) ||
          !read_uint((*off_it)[1], &end)) {
        throw Error(where + "data_offsets: expected [begin, end] with two non-negative integers");
      }
      if (begin > end) {
        throw Error(where + "data_offsets: begin " + std::to_string(begin) + " > end " +
                    std::to_string(end));
      }
      if (end > data_size) {
        throw Error(where + "data_offsets: [" + std::to_string(begin) + ", " + std::to_string(end) +
                    ") run past the end of the data section (" + std::to_string(data_size) +
                    " bytes after the header)");
      }
      if (end - begin != expected_bytes) {
        throw Error(where + "data_offsets: [" + std::to_string(begin) + ", " + std::to_string(end) +
                    ") hold " + std::to_string(end - begin) + " bytes but shape " +
                    shape_text(t.shape) + " of " + t.dtype + " needs " +
                    std::to_string(expected_bytes));
      }
      t.data = base_ + data_offset_ + begin;
      t.n_bytes = end - begin;
      tensors_.push_back(std::move(t));
    }
  } catch (const json::exception& e) {
    // Defensive: every access above is type-checked first, so this means a checking gap.
    throw Error(path_ + ": header: " + printable(e.what()));
  }

  // Tensors must not share bytes.
  std::vector<const StTensor*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const StTensor& t : tensors_) {
    if (t.n_bytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const StTensor* a, const StTensor* b) { return a->data < b->data; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const StTensor& prev = *by_offset[k - 1];
    const StTensor& cur = *by_offset[k];
    if (cur.data < prev.data + prev.n_bytes) {
      const uint64_t cur_begin = uint64_t(cur.data - base_) - data_offset_;
      const uint64_t prev_begin = uint64_t(prev.data - base_) - data_offset_;
      throw Error(path_ + ": tensor '" + printable(cur.name) + "': data_offsets [" +
                  std::to_string(cur_begin) + ", " + std::to_string(cur_begin + cur.n_bytes) +
                  ") overlap tensor '" + printable(prev.name) + "' [" + std::to_string(prev_begin) +
                  ", " + std::to_string(prev_begin + prev.n_bytes) + ")");
    }
  }
}

const StTensor* SafetensorsFile::find(std::string_view name) const {
  // Tensors come from a std::map-backed JSON object, so they are sorted by name.
  const auto it =
      std::lower_bound(tensors_.begin(), tensors_.end(), name,
                       [](const StTensor& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

// ---------------------------------------------------------------------------------------------
// Model folder

namespace {

std::string read_small_file(const std::string& path, uint64_t max_bytes) {
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(path + ": cannot read: " + ec.message());
  if (size > max_bytes) {
    throw Error(path + ": file is " + std::to_string(size) + " bytes, more than the limit of " +
                std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path + ": read failed");
  return ss.str();
}

// Shard names must stay inside the model folder.
bool plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

}  // namespace

std::unique_ptr<SafetensorsModel> SafetensorsModel::open(const std::string& path) {
  namespace fs = std::filesystem;
  std::unique_ptr<SafetensorsModel> m(new SafetensorsModel());
  m->path_ = path;
  std::error_code ec;
  const fs::path root(path);
  const fs::path index_path = root / "model.safetensors.index.json";
  const fs::path single_path = root / "model.safetensors";

  auto add_all = [&](std::unique_ptr<SafetensorsFile> f) {
    for (const StTensor& t : f->tensors()) m->by_name_.emplace(t.name, &t);
    m->shards_.push_back(std::move(f));
  };

  if (fs::is_regular_file(root, ec)) {
    add_all(SafetensorsFile::open(path));
  } else if (!fs::is_directory(root, ec)) {
    throw Error(path + ": not found (expected a model folder or a .safetensors file)");
  } else if (fs::exists(index_path, ec)) {
    const std::string index_name = index_path.string();
    const std::string text = read_small_file(index_name, kMaxIndexBytes);
    json index;
    try {
      index = parse_json_strict(text.data(), text.data() + text.size(), "index", index_name);
    } catch (const json::exception& e) {
      throw Error(index_name + ": " + printable(e.what()));
    }
    if (!index.is_object()) {
      throw Error(index_name + ": expected a JSON object, got " + json_kind(index));
    }
    const auto map_it = index.find("weight_map");
    if (map_it == index.end()) throw Error(index_name + ": weight_map: missing");
    if (!map_it->is_object()) {
      throw Error(index_name + ": weight_map: expected an object, got " + json_kind(*map_it));
    }
    std::map<std::string, const SafetensorsFile*> shard_by_file;
    for (const auto& [name, shard_json] : map_it->items()) {
      const std::string where = index_name + ": weight_map '" + printable(name) + "': ";
      if (!shard_json.is_string()) throw Error(where + "expected a shard file name");
      const std::string shard = shard_json.get<std::string>();
      if (!plain_file_name(shard)) {
        throw Error(where + "shard '" + printable(shard) + "' is not a plain file name");
      }
      const SafetensorsFile*& file = shard_by_file[shard];
      if (!file) {
        m->shards_.push_back(SafetensorsFile::open((root / shard).string()));
        file = m->shards_.back().get();
      }
      const StTensor* t = file->find(name);
      if (!t) throw Error(where + "tensor is not in shard " + file->path());
      m->by_name_.emplace(name, t);
    }
  } else if (fs::exists(single_path, ec)) {
    add_all(SafetensorsFile::open(single_path.string()));
  } else {
    throw Error(path + ": no model.safetensors or model.safetensors.index.json in this folder");
  }
  return m;
}

const StTensor* SafetensorsModel::find(std::string_view name) const {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const StTensor& SafetensorsModel::get(std::string_view name) const {
  const StTensor* t = find(name);
  if (!t) throw Error(path_ + ": tensor '" + printable(name) + "': not found");
  return *t;
}

std::vector<std::string> SafetensorsModel::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(by_name_.size());
  for (const auto& [name, t] : by_name_) names.push_back(name);
  return names;
}

// ---------------------------------------------------------------------------------------------
// Writer

void SafetensorsWriter::add(const std::string& name, const std::string& dtype,
                            const std::vector<int64_t>& shape, Producer producer) {
  const int64_t elem = st_dtype_size(dtype);
  if (elem <= 0) throw Error("safetensors writer: tensor '" + name + "': unknown dtype " + dtype);
  for (const Pending& t : tensors_) {
    if (t.name == name) throw Error("safetensors writer: tensor '" + name + "': added twice");
  }
  uint64_t n = uint64_t(elem);
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && n > UINT64_MAX / uint64_t(d))) {
      throw Error("safetensors writer: tensor '" + name + "': bad shape");
    }
    n *= uint64_t(d);
  }
  tensors_.push_back({name, dtype, shape, n, std::move(producer)});
}

void SafetensorsWriter::write(const std::string& path) {
  json header = json::object();
  uint64_t offset = 0;
  for (const Pending& t : tensors_) {
    header[t.name] = {
        {"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.n_bytes}}};
    offset += t.n_bytes;
  }
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // data starts 8-byte aligned
  TempFile out(path);
  const uint64_t len = text.size();
  out.write(&len, 8);
  out.write(text.data(), text.size());
  for (const Pending& t : tensors_) {
    uint64_t written = 0;
    t.producer([&](const void* data, uint64_t n) {
      if (written + n > t.n_bytes) {
        throw Error(path + ": tensor '" + t.name + "': producer wrote too many bytes");
      }
      out.write(data, n);
      written += n;
    });
    if (written != t.n_bytes) {
      throw Error(path + ": tensor '" + t.name + "': producer wrote " + std::to_string(written) +
                  " of " + std::to_string(t.n_bytes) + " bytes");
    }
  }
  out.commit();
}

}  // namespace ug
