#include "format/gguf.h"
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
#include <limits>
#include <string>
#include <unordered_set>

#include "util/error.h"

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader maps little-endian files directly");

namespace ug::gguf {

namespace {

constexpr uint32_t kDefaultAlignment = 32;
constexpr char kMagic[4] = {'G', 'G', 'U', 'F'};
// Smallest encodings, used to bound counts by the bytes that are left before anything is allocated.
constexpr uint64_t kHeaderBytes = 4 + 4 + 8 + 8;  // magic, version, tensor count, kv count
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;       // empty key, value type, one-byte value
constexpr uint64_t kMinTensorInfoBytes =
    8 + 4 + 8 + 4 + 8;  // empty name, n_dims, ne[0], type, offset
// Nested arrays recurse; a hostile file could otherwise nest deep enough to exhaust the stack.
constexpr int kMaxArrayDepth = 8;
// No real vocabulary or table comes near this; it caps the in-memory expansion (8 bytes per
// element).
constexpr uint64_t kMaxArrayElems = uint64_t(1) << 26;
constexpr uint64_t kMaxAlignment = uint64_t(1) << 30;

// Keys and tensor names come from the file: keep error messages on one printable line.
std::string printable(std::string_view s) {
  constexpr size_t kMaxLen = 96;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxLen; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > kMaxLen) out += "...";
  return out;
}

bool valid_value_type(uint32_t t) {
  return t <= uint32_t(ValueType::F64);
}

bool is_unsigned_type(ValueType t) {
  return t == ValueType::U8 || t == ValueType::U16 || t == ValueType::U32 || t == ValueType::U64;
}
bool is_signed_type(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}
bool is_float_type(ValueType t) {
  return t == ValueType::F32 || t == ValueType::F64;
}
// Types whose array elements live in Value::ints.
bool is_int_like(ValueType t) {
  return is_unsigned_type(t) || is_signed_type(t) || t == ValueType::BOOL;
}

// Bytes of the smallest possible encoding of one value of type t.
uint64_t min_value_bytes(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL:
      return 1;
    case ValueType::U16:
    case ValueType::I16:
      return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
      return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
    case ValueType::STRING:  // the length prefix
      return 8;
    case ValueType::ARRAY:  // element type + count
      return 12;
  }
  return 1;
}

std::string type_description(const Value& v) {
  if (v.type != ValueType::ARRAY) return value_type_name(v.type);
  return std::string("ARRAY of ") + value_type_name(v.elem_type);
}

// Bounds-checked little-endian cursor over the mapped bytes. `where` names the item being parsed
// (e.g. "metadata 'general.name'"); it is only turned into text when something is wrong.
class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size, const std::string& path)
      : base_(base), size_(size), path_(path) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& where, const std::string& problem) const {
    throw Error(path_ + ": " + where + ": " + problem);
  }

  void need(uint64_t n, const std::string& where, const char* what) const {
    if (n > remaining()) {
      fail(where, std::string(what) + " at offset " + std::to_string(pos_) + " needs " +
                      std::to_string(n) + " bytes but the file ends at " + std::to_string(size_) +
                      " (truncated)");
    }
  }

  template <typename T>
  T read(const std::string& where, const char* what) {
    need(sizeof(T), where, what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const std::string& where, const char* what) {
    const uint64_t at = pos_;
    const uint64_t len = read<uint64_t>(where, what);
    if (len > remaining()) {
      fail(where, std::string(what) + " at offset " + std::to_string(at) + ": length " +
                      std::to_string(len) + " exceeds the " + std::to_string(remaining()) +
                      " bytes left in the file");
    }
    std::string s(reinterpret_cast<const char*>(base_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& path_;
};

int64_t read_int_elem(Cursor& c, ValueType t, const std::string& where) {
  switch (t) {
    case ValueType::U8:
      return c.read<uint8_t>(where, "U8 value");
    case ValueType::I8:
      return c.read<int8_t>(where, "I8 value");
    case ValueType::BOOL:
      return c.read<uint8_t>(where, "BOOL value") != 0 ? 1 : 0;
    case ValueType::U16:
      return c.read<uint16_t>(where, "U16 value");
    case ValueType::I16:
      return c.read<int16_t>(where, "I16 value");
    case ValueType::U32:
      return c.read<uint32_t>(where, "U32 value");
    case ValueType::I32:
      return c.read<int32_t>(where, "I32 value");
    case ValueType::U64:  // stored bit-cast; getters check the sign bit
      return std::bit_cast<int64_t>(c.read<uint64_t>(where, "U64 value"));
    case ValueType::I64:
      return c.read<int64_t>(where, "I64 value");
    default:
      c.fail(where, "internal: not an integer type");
  }
}

void read_array(Cursor& c, Value& v, const std::string& where, int depth);

void read_scalar(Cursor& c, Value& v, const std::string& where, int depth) {
  switch (v.type) {
    case ValueType::U8:
    case ValueType::U16:
    case ValueType::U32:
    case ValueType::U64:
      v.u = std::bit_cast<uint64_t>(read_int_elem(c, v.type, where));
      if (v.u <= uint64_t(std::numeric_limits<int64_t>::max())) v.i = int64_t(v.u);
      return;
    case ValueType::I8:
    case ValueType::I16:
    case ValueType::I32:
    case ValueType::I64:
    case ValueType::BOOL:
      v.i = read_int_elem(c, v.type, where);
      return;
    case ValueType::F32:
      v.f = c.read<float>(where, "F32 value");
      return;
    case ValueType::F64:
      v.f = c.read<double>(where, "F64 value");
      return;
    case ValueType::STRING:
      v.s = c.read_string(where, "string value");
      return;
    case ValueType::ARRAY:
      read_array(c, v, where, depth);
      return;
  }
}

void read_array(Cursor& c, Value& v, const std::string& where, int depth) {
  if (depth >= kMaxArrayDepth) {
    c.fail(where, "arrays nested deeper than " + std::to_string(kMaxArrayDepth) +
                      " levels at offset " + std::to_string(c.pos()));
  }
  const uint64_t type_at = c.pos();
  const uint32_t raw_elem = c.read<uint32_t>(where, "array element type");
  if (!valid_value_type(raw_elem)) {
    c.fail(where, "unknown array element type " + std::to_string(raw_elem) + " at offset " +
                      std::to_string(type_at));
  }
  v.type = ValueType::ARRAY;
  v.elem_type = ValueType(raw_elem);
  const uint64_t count_at = c.pos();
  const uint64_t n = c.read<uint64_t>(where, "array length");
  const uint64_t min_bytes = min_value_bytes(v.elem_type);
  if (n > c.remaining() / min_bytes) {
    c.fail(where, "array of " + std::to_string(n) + " " + value_type_name(v.elem_type) +
                      " elements at offset " + std::to_string(count_at) + " needs at least " +
                      std::to_string(min_bytes) + " bytes each, only " +
                      std::to_string(c.remaining()) + " bytes are left");
  }
  if (n > kMaxArrayElems) {
    c.fail(where, "array of " + std::to_string(n) + " elements at offset " +
                      std::to_string(count_at) + " exceeds the limit of " +
                      std::to_string(kMaxArrayElems));
  }
  if (is_int_like(v.elem_type)) {
    v.ints.resize(n);
    for (uint64_t k = 0; k < n; ++k) v.ints[k] = read_int_elem(c, v.elem_type, where);
  } else if (v.elem_type == ValueType::F32) {
    v.floats.resize(n);
    for (uint64_t k = 0; k < n; ++k) v.floats[k] = c.read<float>(where, "F32 element");
  } else if (v.elem_type == ValueType::F64) {
    v.floats.resize(n);
    for (uint64_t k = 0; k < n; ++k) v.floats[k] = c.read<double>(where, "F64 element");
  } else if (v.elem_type == ValueType::STRING) {
    v.strs.reserve(n);
    for (uint64_t k = 0; k < n; ++k) v.strs.push_back(c.read_string(where, "string element"));
  } else {
    // A Value is much larger than its 12-byte minimum encoding: grow as elements actually parse.
    v.arr.reserve(std::min<uint64_t>(n, 1024));
    for (uint64_t k = 0; k < n; ++k) {
      Value& e = v.arr.emplace_back();
      e.type = ValueType::ARRAY;
      read_array(c, e, where, depth + 1);
    }
  }
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

std::string ne_text(const TensorInfo& t) {
  std::string s = "{";
  for (int d = 0; d < t.n_dims; ++d) {
    if (d) s += ", ";
    s += std::to_string(t.ne[d]);
  }
  return s + "}";
}

}  // namespace

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8:
      return "U8";
    case ValueType::I8:
      return "I8";
    case ValueType::U16:
      return "U16";
    case ValueType::I16:
      return "I16";
    case ValueType::U32:
      return "U32";
    case ValueType::I32:
      return "I32";
    case ValueType::F32:
      return "F32";
    case ValueType::BOOL:
      return "BOOL";
    case ValueType::STRING:
      return "STRING";
    case ValueType::ARRAY:
      return "ARRAY";
    case ValueType::U64:
      return "U64";
    case ValueType::I64:
      return "I64";
    case ValueType::F64:
      return "F64";
  }
  return "INVALID";
}

uint64_t Value::array_size() const {
  if (type != ValueType::ARRAY) return 0;
  if (elem_type == ValueType::STRING) return strs.size();
  if (elem_type == ValueType::ARRAY) return arr.size();
  if (is_float_type(elem_type)) return floats.size();
  return ints.size();
}

// ---------------------------------------------------------------------------------------------
// Reader

std::unique_ptr<File> File::open(const std::string& path) {
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
  std::unique_ptr<File> f(new File());
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

std::unique_ptr<File> File::from_memory(const uint8_t* bytes, size_t size,
                                        const std::string& name) {
  std::unique_ptr<File> f(new File());
  f->path_ = name;
  f->base_ = bytes;
  f->size_ = bytes ? size : 0;
  f->parse();
  return f;
}

File::~File() {
  if (owns_mapping_ && base_) ::munmap(const_cast<uint8_t*>(base_), size_);
}

void File::release(const uint8_t* data, uint64_t n) const {
  if (!owns_mapping_ || n == 0 || data < base_ || data + n > base_ + size_) return;
  const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + n) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

void File::parse() {
  Cursor c(base_, size_, path_);
  const std::string header = "header";
  if (size_ < sizeof(kMagic) || std::memcmp(base_, kMagic, sizeof(kMagic)) != 0) {
    char got[32] = "an empty file";
    if (size_ > 0) {
      int len = 0;
      for (uint64_t k = 0; k < std::min<uint64_t>(size_, 4); ++k) {
        len += std::snprintf(got + len, sizeof(got) - size_t(len), k ? " %02x" : "%02x", base_[k]);
      }
    }
    c.fail("magic",
           std::string("expected \"GGUF\" (47 47 55 46), got ") + got + "; not a GGUF file");
  }
  c.read<uint32_t>(header, "magic");
  version_ = c.read<uint32_t>("version", "version");
  if (version_ != 2 && version_ != 3) {
    const uint32_t swapped = __builtin_bswap32(version_);
    if (swapped >= 1 && swapped <= 3) {
      c.fail("version", "big-endian GGUF (version " + std::to_string(swapped) +
                            " byte-swapped) is not supported");
    }
    c.fail("version", "GGUF version " + std::to_string(version_) +
                          " is not supported (this reader handles versions 2 and 3)");
  }
  const uint64_t n_tensors = c.read<uint64_t>("tensor_count", "tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata_kv_count", "metadata count");
  if (n_tensors > c.remaining() / kMinTensorInfoBytes) {
    c.fail("tensor_count", std::to_string(n_tensors) + " tensors cannot fit in the " +
                               std::to_string(c.remaining()) + " bytes after the " +
                               std::to_string(kHeaderBytes) + "-byte header");
  }
  if (n_kv > c.remaining() / kMinKvBytes ||
      n_kv * kMinKvBytes + n_tensors * kMinTensorInfoBytes > c.remaining()) {
    c.fail("metadata_kv_count", std::to_string(n_kv) + " metadata entries and " +
                                    std::to_string(n_tensors) + " tensors cannot fit in the " +
                                    std::to_string(c.remaining()) + " bytes after the header");
  }

  // Metadata.
  kv_.clear();
  kv_.reserve(std::min<uint64_t>(n_kv, 256));
  std::unordered_set<std::string> keys;
  for (uint64_t k = 0; k < n_kv; ++k) {
    const std::string key_where = "metadata #" + std::to_string(k);
    const uint64_t key_at = c.pos();
    std::string key = c.read_string(key_where, "key");
    const std::string where = "metadata '" + printable(key) + "'";
    if (!keys.insert(key).second) {
      c.fail(where, "duplicate key (second occurrence at offset " + std::to_string(key_at) + ")");
    }
    const uint64_t type_at = c.pos();
    const uint32_t raw_type = c.read<uint32_t>(where, "value type");
    if (!valid_value_type(raw_type)) {
      c.fail(where, "unknown value type " + std::to_string(raw_type) + " at offset " +
                        std::to_string(type_at));
    }
    KeyValue& kv = kv_.emplace_back();
    kv.key = std::move(key);
    kv.value.type = ValueType(raw_type);
    read_scalar(c, kv.value, where, 0);
  }

  alignment_ = kDefaultAlignment;
  if (const Value* a = find("general.alignment")) {
    const std::string where = "metadata 'general.alignment'";
    if (!is_unsigned_type(a->type) && !is_signed_type(a->type)) {
      c.fail(where, std::string("expected an unsigned integer, got ") + type_description(*a));
    }
    const bool negative = is_signed_type(a->type) && a->i < 0;
    const uint64_t value = is_unsigned_type(a->type) ? a->u : uint64_t(a->i);
    if (negative || value == 0 || value > kMaxAlignment || !std::has_single_bit(value)) {
      c.fail(where, "alignment " + (negative ? std::to_string(a->i) : std::to_string(value)) +
                        " must be a power of two between 1 and " + std::to_string(kMaxAlignment));
    }
    alignment_ = uint32_t(value);
  }

  // Tensor descriptions.
  tensors_.clear();
  tensors_.reserve(std::min<uint64_t>(n_tensors, 4096));
  std::unordered_set<std::string> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    const std::string name_where = "tensor #" + std::to_string(k);
    const uint64_t name_at = c.pos();
    std::string name = c.read_string(name_where, "name");
    const std::string where = "tensor '" + printable(name) + "'";
    if (!names.insert(name).second) {
      c.fail(where,
             "duplicate tensor name (second occurrence at offset " + std::to_string(name_at) + ")");
    }
    TensorInfo& t = tensors_.emplace_back();
    t.name = std::move(name);
    const uint64_t dims_at = c.pos();
    const uint32_t n_dims = c.read<uint32_t>(where, "n_dims");
    if (n_dims < 1 || n_dims > 4) {
      c.fail(where, "n_dims " + std::to_string(n_dims) + " at offset " + std::to_string(dims_at) +
                        " is out of range (1..4)");
    }
    t.n_dims = int(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne_at = c.pos();
      const uint64_t ne = c.read<uint64_t>(where, "ne");
      if (ne > uint64_t(std::numeric_limits<int64_t>::max())) {
        c.fail(where, "ne[" + std::to_string(d) + "] = " + std::to_string(ne) + " at offset " +
                          std::to_string(ne_at) + " is out of range");
      }
      t.ne[d] = int64_t(ne);
    }
    const uint64_t type_at = c.pos();
    t.raw_type = c.read<uint32_t>(where, "type");
    t.type = TensorType(t.raw_type);
    const uint64_t offset_at = c.pos();
    const uint64_t rel_offset = c.read<uint64_t>(where, "offset");

    const int64_t block_elems = type_block_elems(t.type);
    const int64_t block_bytes = type_block_bytes(t.type);
    if (block_elems <= 0 || block_bytes <= 0) {
      c.fail(where, "unknown tensor type number " + std::to_string(t.raw_type) + " at offset " +
                        std::to_string(type_at));
    }
    uint64_t n_elems = 1;
    for (int d = 0; d < 4; ++d) {
      if (!checked_mul(n_elems, uint64_t(t.ne[d]), &n_elems) ||
          n_elems > uint64_t(std::numeric_limits<int64_t>::max())) {
        c.fail(where, "element count of shape " + ne_text(t) + " overflows int64");
      }
    }
    if (t.ne[0] % block_elems != 0) {
      c.fail(where, "ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of the " +
                        tensor_type_name(t.raw_type) + " block size " +
                        std::to_string(block_elems));
    }
    uint64_t n_bytes = uint64_t(t.ne[0] / block_elems);
    bool ok = checked_mul(n_bytes, uint64_t(block_bytes), &n_bytes);
    for (int d = 1; d < 4 && ok; ++d) ok = checked_mul(n_bytes, uint64_t(t.ne[d]), &n_bytes);
    if (!ok) c.fail(where, "byte size of shape " + ne_text(t) + " overflows 64 bits");
    t.n_bytes = n_bytes;
    if (rel_offset % alignment_ != 0) {
      c.fail(where, "data offset " + std::to_string(rel_offset) + " (at offset " +
                        std::to_string(offset_at) + ") is not a multiple of the alignment " +
                        std::to_string(alignment_));
    }
    t.offset = rel_offset;  // made absolute below, once the data section start is known
  }

  // The data section starts at the next multiple of the alignment after the tensor descriptions.
  const uint64_t infos_end = c.pos();
  data_offset_ = (infos_end + alignment_ - 1) / alignment_ * alignment_;  // no overflow: both small
  for (TensorInfo& t : tensors_) {
    uint64_t begin = 0, end = 0;
    if (!checked_add(data_offset_, t.offset, &begin) || !checked_add(begin, t.n_bytes, &end) ||
        end > size_) {
      c.fail("tensor '" + printable(t.name) + "'",
             "data at offset " + std::to_string(t.offset) + " + " + std::to_string(t.n_bytes) +
                 " bytes (data section starts at " + std::to_string(data_offset_) +
                 ") runs past the end of the file (" + std::to_string(size_) + " bytes)");
    }
    t.offset = begin;
    t.data = base_ + begin;
  }

  // Tensors must not share bytes: a writer bug or a crafted file could alias weights otherwise.
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const TensorInfo& t : tensors_) {
    if (t.n_bytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const TensorInfo& prev = *by_offset[k - 1];
    const TensorInfo& cur = *by_offset[k];
    if (cur.offset < prev.offset + prev.n_bytes) {
      c.fail("tensor '" + printable(cur.name) + "'",
             "data [" + std::to_string(cur.offset) + ", " +
                 std::to_string(cur.offset + cur.n_bytes) + ") overlaps tensor '" +
                 printable(prev.name) + "' [" + std::to_string(prev.offset) + ", " +
                 std::to_string(prev.offset + prev.n_bytes) + ")");
    }
  }
}

const Value* File::find(std::string_view key) const {
  for (const KeyValue& kv : kv_) {
    if (kv.key == key) return &kv.value;
  }
  return nullptr;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

namespace {

[[noreturn]] void metadata_error(const std::string& path, std::string_view key,
                                 const std::string& problem) {
  throw Error(path + ": metadata '" + printable(key) + "': " + problem);
}

const Value& require(const File& f, std::string_view key) {
  const Value* v = f.find(key);
  if (!v) metadata_error(f.path(), key, "missing");
  return *v;
}

[[noreturn]] void wrong_type(const File& f, std::string_view key, const char* expected,
                             const Value& v) {
  metadata_error(f.path(), key,
                 std::string("expected ") + expected + ", got " + type_description(v));
}

}  // namespace

std::string File::get_string(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::STRING) wrong_type(*this, key, "STRING", v);
  return v.s;
}

int64_t File::get_int(std::string_view key) const {
  const Value& v = require(*this, key);
  if (is_unsigned_type(v.type)) {
    if (v.u > uint64_t(std::numeric_limits<int64_t>::max())) {
      metadata_error(path_, key, "value " + std::to_string(v.u) + " does not fit in int64");
    }
    return int64_t(v.u);
  }
  if (is_signed_type(v.type) || v.type == ValueType::BOOL) return v.i;
  wrong_type(*this, key, "an integer", v);
}

double File::get_float(std::string_view key) const {
  const Value& v = require(*this, key);
  if (is_float_type(v.type)) return v.f;
  if (is_unsigned_type(v.type)) return double(v.u);
  if (is_signed_type(v.type)) return double(v.i);
  wrong_type(*this, key, "a number", v);
}

bool File::get_bool(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::BOOL) wrong_type(*this, key, "BOOL", v);
  return v.i != 0;
}

std::vector<int64_t> File::get_int_array(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::ARRAY || !is_int_like(v.elem_type)) {
    wrong_type(*this, key, "an array of integers", v);
  }
  if (v.elem_type == ValueType::U64) {
    for (size_t k = 0; k < v.ints.size(); ++k) {
      if (v.ints[k] < 0) {
        metadata_error(path_, key,
                       "element " + std::to_string(k) + " = " +
                           std::to_string(std::bit_cast<uint64_t>(v.ints[k])) +
                           " does not fit in int64");
      }
    }
  }
  return v.ints;
}

std::vector<double> File::get_float_array(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::ARRAY || !(is_float_type(v.elem_type) || is_int_like(v.elem_type)) ||
      v.elem_type == ValueType::BOOL) {
    wrong_type(*this, key, "an array of numbers", v);
  }
  if (is_float_type(v.elem_type)) return v.floats;
  std::vector<double> out(v.ints.size());
  for (size_t k = 0; k < out.size(); ++k) {
    out[k] = v.elem_type == ValueType::U64 ? double(std::bit_cast<uint64_t>(v.ints[k]))
                                           : double(v.ints[k]);
  }
  return out;
}

const std::vector<std::string>& File::get_string_array(std::string_view key) const {
  const Value& v = require(*this, key);
  if (v.type != ValueType::ARRAY || v.elem_type != ValueType::STRING) {
    wrong_type(*this, key, "an array of STRING", v);
  }
  return v.strs;
}

std::optional<std::string> File::opt_string(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_string(key);
}

std::optional<int64_t> File::opt_int(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_int(key);
}

std::optional<double> File::opt_float(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return get_float(key);
}

// ---------------------------------------------------------------------------------------------
// Writer

void Writer::set(const std::string& key, const Value& value) {
  for (KeyValue& kv : kv_) {
    if (kv.key == key) {
      kv.value = value;
      return;
    }
  }
  kv_.push_back({key, value});
}

void Writer::set_string(const std::string& key, const std::string& v) {
  Value val;
  val.type = ValueType::STRING;
  val.s = v;
  set(key, val);
}

void Writer::set_u32(const std::string& key, uint32_t v) {
  Value val;
  val.type = ValueType::U32;
  val.u = v;
  val.i = v;
  set(key, val);
}

void Writer::set_i32(const std::string& key, int32_t v) {
  Value val;
  val.type = ValueType::I32;
  val.i = v;
  set(key, val);
}

void Writer::set_u64(const std::string& key, uint64_t v) {
  Value val;
  val.type = ValueType::U64;
  val.u = v;
  if (v <= uint64_t(std::numeric_limits<int64_t>::max())) val.i = int64_t(v);
  set(key, val);
}

void Writer::set_f32(const std::string& key, float v) {
  Value val;
  val.type = ValueType::F32;
  val.f = v;
  set(key, val);
}

void Writer::set_bool(const std::string& key, bool v) {
  Value val;
  val.type = ValueType::BOOL;
  val.i = v ? 1 : 0;
  set(key, val);
}

void Writer::set_string_array(const std::string& key, std::vector<std::string> v) {
  Value val;
  val.type = ValueType::ARRAY;
  val.elem_type = ValueType::STRING;
  val.strs = std::move(v);
  set(key, val);
}

void Writer::set_i32_array(const std::string& key, const std::vector<int32_t>& v) {
  Value val;
  val.type = ValueType::ARRAY;
  val.elem_type = ValueType::I32;
  val.ints.assign(v.begin(), v.end());
  set(key, val);
}

void Writer::set_f32_array(const std::string& key, const std::vector<float>& v) {
  Value val;
  val.type = ValueType::ARRAY;
  val.elem_type = ValueType::F32;
  val.floats.assign(v.begin(), v.end());
  set(key, val);
}

void Writer::set_bool_array(const std::string& key, const std::vector<bool>& v) {
  Value val;
  val.type = ValueType::ARRAY;
  val.elem_type = ValueType::BOOL;
  val.ints.assign(v.begin(), v.end());
  set(key, val);
}

void Writer::add_tensor(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                        Producer producer) {
  const std::string where = "gguf writer: tensor '" + printable(name) + "': ";
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) throw Error(where + "added twice");
  }
  if (ne.empty() || ne.size() > 4) {
    throw Error(where + std::to_string(ne.size()) + " dimensions (1..4 supported)");
  }
  const int64_t block_elems = type_block_elems(type);
  const int64_t block_bytes = type_block_bytes(type);
  if (block_elems <= 0) throw Error(where + "unknown type " + tensor_type_name(type));
  for (int64_t d : ne) {
    if (d < 0) throw Error(where + "negative dimension " + std::to_string(d));
  }
  if (ne[0] % block_elems != 0) {
    throw Error(where + "ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the " +
                tensor_type_name(type) + " block size " + std::to_string(block_elems));
  }
  uint64_t n_bytes = uint64_t(ne[0] / block_elems);
  bool ok = checked_mul(n_bytes, uint64_t(block_bytes), &n_bytes);
  for (size_t d = 1; d < ne.size() && ok; ++d) ok = checked_mul(n_bytes, uint64_t(ne[d]), &n_bytes);
  if (!ok) throw Error(where + "byte size overflows 64 bits");
  tensors_.push_back({name, type, ne, n_bytes, std::move(producer), nullptr});
}

void Writer::add_tensor_stream(const std::string& name, TensorType type,
                               const std::vector<int64_t>& ne, StreamProducer producer) {
  add_tensor(name, type, ne, nullptr);
  tensors_.back().stream = std::move(producer);
}

void Writer::add_tensor_bytes(const std::string& name, TensorType type,
                              const std::vector<int64_t>& ne, const void* data) {
  add_tensor(name, type, ne, [data](uint8_t* out, uint64_t n_bytes) {
    if (n_bytes) std::memcpy(out, data, n_bytes);
  });
}

namespace {

class HeaderBuffer {
 public:
  std::vector<uint8_t> bytes;

  void put_bytes(const void* data, size_t n) {
    const size_t at = bytes.size();
    bytes.resize(at + n);
    if (n) std::memcpy(bytes.data() + at, data, n);
  }
  template <typename T>
  void put(T v) {
    put_bytes(&v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    put_bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    while (bytes.size() % alignment != 0) bytes.push_back(0);
  }
};

// Checks that an integer fits the declared GGUF type, so a round trip returns what was set.
void put_int(HeaderBuffer& out, ValueType t, int64_t i, uint64_t u, const std::string& where) {
  auto range_error = [&](const std::string& value) {
    throw Error(where + "value " + value + " does not fit " + value_type_name(t));
  };
  auto check_signed = [&](int64_t lo, int64_t hi) {
    if (i < lo || i > hi) range_error(std::to_string(i));
  };
  auto check_unsigned = [&](uint64_t hi) {
    if (u > hi) range_error(std::to_string(u));
  };
  switch (t) {
    case ValueType::U8:
      check_unsigned(0xff);
      out.put<uint8_t>(uint8_t(u));
      return;
    case ValueType::U16:
      check_unsigned(0xffff);
      out.put<uint16_t>(uint16_t(u));
      return;
    case ValueType::U32:
      check_unsigned(0xffffffffu);
      out.put<uint32_t>(uint32_t(u));
      return;
    case ValueType::U64:
      out.put<uint64_t>(u);
      return;
    case ValueType::I8:
      check_signed(-128, 127);
      out.put<int8_t>(int8_t(i));
      return;
    case ValueType::I16:
      check_signed(-32768, 32767);
      out.put<int16_t>(int16_t(i));
      return;
    case ValueType::I32:
      check_signed(std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
      out.put<int32_t>(int32_t(i));
      return;
    case ValueType::I64:
      out.put<int64_t>(i);
      return;
    case ValueType::BOOL:
      out.put<uint8_t>(i != 0 ? 1 : 0);
      return;
    default:
      throw Error(where + "internal: not an integer type");
  }
}

void put_array_body(HeaderBuffer& out, const Value& v, const std::string& where, int depth);

void put_value(HeaderBuffer& out, const Value& v, const std::string& where, int depth) {
  if (!valid_value_type(uint32_t(v.type))) {
    throw Error(where + "invalid value type " + std::to_string(uint32_t(v.type)));
  }
  if (is_int_like(v.type)) {
    put_int(out, v.type, v.i, v.u, where);
  } else if (v.type == ValueType::F32) {
    out.put<float>(float(v.f));
  } else if (v.type == ValueType::F64) {
    out.put<double>(v.f);
  } else if (v.type == ValueType::STRING) {
    out.put_string(v.s);
  } else {
    put_array_body(out, v, where, depth);
  }
}

void put_array_body(HeaderBuffer& out, const Value& v, const std::string& where, int depth) {
  if (depth >= kMaxArrayDepth) {
    throw Error(where + "arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
  }
  if (!valid_value_type(uint32_t(v.elem_type))) {
    throw Error(where + "invalid array element type " + std::to_string(uint32_t(v.elem_type)));
  }
  out.put<uint32_t>(uint32_t(v.elem_type));
  out.put<uint64_t>(v.array_size());
  if (is_int_like(v.elem_type)) {
    const bool narrow_unsigned = is_unsigned_type(v.elem_type) && v.elem_type != ValueType::U64;
    for (int64_t e : v.ints) {
      if (narrow_unsigned && e < 0) {
        throw Error(where + "value " + std::to_string(e) + " does not fit " +
                    value_type_name(v.elem_type));
      }
      // U64 elements are kept bit-cast in `ints` (see read_int_elem).
      put_int(out, v.elem_type, e, std::bit_cast<uint64_t>(e), where);
    }
  } else if (v.elem_type == ValueType::F32) {
    for (double e : v.floats) out.put<float>(float(e));
  } else if (v.elem_type == ValueType::F64) {
    for (double e : v.floats) out.put<double>(e);
  } else if (v.elem_type == ValueType::STRING) {
    for (const std::string& e : v.strs) out.put_string(e);
  } else {
    for (const Value& e : v.arr) {
      if (e.type != ValueType::ARRAY) {
        throw Error(where + "element of a nested array has type " + value_type_name(e.type));
      }
      put_array_body(out, e, where, depth + 1);
    }
  }
}

}  // namespace

void Writer::write(const std::string& path) {
  if (alignment_ == 0 || alignment_ > kMaxAlignment || !std::has_single_bit(alignment_)) {
    throw Error(path + ": alignment " + std::to_string(alignment_) +
                " must be a power of two between 1 and " + std::to_string(kMaxAlignment));
  }
  std::vector<const KeyValue*> kvs;
  kvs.reserve(kv_.size() + 1);
  bool has_alignment_key = false;
  for (const KeyValue& kv : kv_) {
    if (kv.key == "general.alignment") {
      has_alignment_key = true;
      const Value& a = kv.value;
      if (a.type != ValueType::U32 || a.u != alignment_) {
        throw Error(path + ": metadata 'general.alignment' must be U32 " +
                    std::to_string(alignment_) + " to match the writer's alignment");
      }
    }
    kvs.push_back(&kv);
  }
  // Readers assume 32 unless told: record any other alignment in the file.
  KeyValue alignment_kv;
  if (!has_alignment_key && alignment_ != kDefaultAlignment) {
    alignment_kv.key = "general.alignment";
    alignment_kv.value.type = ValueType::U32;
    alignment_kv.value.u = alignment_;
    alignment_kv.value.i = alignment_;
    kvs.push_back(&alignment_kv);
  }

  HeaderBuffer h;
  h.put_bytes(kMagic, sizeof(kMagic));
  h.put<uint32_t>(3);
  h.put<uint64_t>(tensors_.size());
  h.put<uint64_t>(kvs.size());
  for (const KeyValue* kv : kvs) {
    const std::string where = path + ": metadata '" + printable(kv->key) + "': ";
    h.put_string(kv->key);
    h.put<uint32_t>(uint32_t(kv->value.type));
    put_value(h, kv->value, where, 0);
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    h.put_string(t.name);
    h.put<uint32_t>(uint32_t(t.ne.size()));
    for (int64_t d : t.ne) h.put<uint64_t>(uint64_t(d));
    h.put<uint32_t>(uint32_t(t.type));
    h.put<uint64_t>(offset);
    offset += (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
  }
  h.pad_to(alignment_);

  TempFile out(path);
  out.write(h.bytes.data(), h.bytes.size());
  h.bytes = {};
  std::vector<uint8_t> buf;
  for (const PendingTensor& t : tensors_) {
    if (t.stream) {
      uint64_t written = 0;
      t.stream([&](const void* data, uint64_t n) {
        if (written + n > t.n_bytes) {
          throw Error(path + ": tensor '" + t.name + "': producer wrote more than " +
                      std::to_string(t.n_bytes) + " bytes");
        }
        out.write(data, n);
        written += n;
      });
      if (written != t.n_bytes) {
        throw Error(path + ": tensor '" + t.name + "': producer wrote " + std::to_string(written) +
                    " of " + std::to_string(t.n_bytes) + " bytes");
      }
    } else {
      buf.assign(t.n_bytes, 0);
      t.producer(buf.data(), t.n_bytes);
      out.write(buf.data(), buf.size());
    }
    const uint64_t padded = (t.n_bytes + alignment_ - 1) / alignment_ * alignment_;
    out.write_zeros(padded - t.n_bytes);
  }
  out.commit();
}

}  // namespace ug::gguf
