// Broken GGUF files: each must fail with one ug::Error line naming the file and the field.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "format/format_test_util.h"
#include "format/gguf.h"
#include "util/error.h"

namespace ug::gguf {
namespace {

using test::Bytes;
using test::error_of;
using test::expect_message;
using test::TempDir;

constexpr uint64_t kHuge = uint64_t(1) << 60;

// Header of a hand-made file: magic, version, counts.
Bytes header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
  Bytes b;
  b.raw("GGUF", 4).u32(version).u64(n_tensors).u64(n_kv);
  return b;
}

// One tensor description.
void tensor_info(Bytes& b, const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                 uint64_t offset) {
  b.str(name).u32(uint32_t(ne.size()));
  for (uint64_t d : ne) b.u64(d);
  b.u32(type).u64(offset);
}

// A file with one F32 tensor "w" of `ne` at `offset`, followed by `data_bytes` of data.
Bytes one_tensor(std::vector<uint64_t> ne, uint32_t type, uint64_t offset, size_t data_bytes) {
  Bytes b = header(1, 0);
  tensor_info(b, "w", std::move(ne), type, offset);
  b.pad_to(32).zeros(data_bytes);
  return b;
}

// Writes the bytes under `name`, opens the file and returns the error message.
std::string open_error(const TempDir& dir, const std::string& name, const Bytes& b) {
  const std::string path = dir.file(name);
  test::write_bytes(path, b.v);
  return error_of([&] { File::open(path); });
}

// A small valid file with metadata of several kinds and two tensors.
std::vector<uint8_t> small_valid_file(const TempDir& dir) {
  const std::string path = dir.file("small_valid.gguf");
  Writer w;
  w.set_string("general.architecture", "gemma4");
  w.set_u32("gemma4.block_count", 6);
  w.set_string_array("tokenizer.ggml.tokens", {"<pad>", "<eos>", "<bos>", "a"});
  w.set_f32_array("f", {1.0f, 2.0f});
  Value nested;
  nested.type = ValueType::ARRAY;
  nested.elem_type = ValueType::ARRAY;
  Value inner;
  inner.type = ValueType::ARRAY;
  inner.elem_type = ValueType::I32;
  inner.ints = {1, 2};
  nested.arr = {inner, inner};
  w.set("nested", nested);
  const std::vector<uint8_t> a = test::pattern_bytes(64, 1), b = test::pattern_bytes(34, 2);
  w.add_tensor_bytes("token_embd.weight", TensorType::F32, {4, 4}, a.data());
  w.add_tensor_bytes("blk.0.attn_q.weight", TensorType::Q8_0, {32}, b.data());
  w.write(path);
  return test::read_bytes(path);
}

TEST(GgufBroken, EveryTruncationOfASmallFileFails) {
  TempDir dir;
  const std::vector<uint8_t> bytes = small_valid_file(dir);
  auto full = File::from_memory(bytes.data(), bytes.size(), "full.gguf");
  uint64_t data_end = 0;
  for (const TensorInfo& t : full->tensors()) data_end = std::max(data_end, t.offset + t.n_bytes);
  ASSERT_GT(data_end, full->data_offset());
  // Every byte of the header region and of the data: each prefix must fail cleanly. The copy makes
  // the prefix its own allocation, so ASan sees any read past its end.
  for (size_t len = 0; len < data_end; ++len) {
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + long(len));
    const std::string msg =
        error_of([&] { File::from_memory(prefix.data(), prefix.size(), "trunc.gguf"); });
    SCOPED_TRACE("length " + std::to_string(len));
    expect_message(msg, {"trunc.gguf: "});
    if (len < full->data_offset()) {
      // The message says what did not fit in the bytes that are there.
      bool explained = false;
      for (const char* why :
           {"truncated", "exceeds the", "cannot fit", "bytes are left", "past the end", "magic"}) {
        explained = explained || msg.find(why) != std::string::npos;
      }
      EXPECT_TRUE(explained) << msg;
    } else {
      expect_message(msg, {"tensor '", "past the end"});
    }
  }
  // The mmap path reports the same way.
  for (size_t len : {size_t(0), size_t(3), size_t(10), size_t(40), size_t(data_end - 1)}) {
    const std::string name = "trunc_" + std::to_string(len) + ".gguf";
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + long(len));
    const std::string path = dir.file(name);
    test::write_bytes(path, prefix);
    expect_message(error_of([&] { File::open(path); }), {path + ": "});
  }
}

TEST(GgufBroken, RandomCorruptionNeverCrashes) {
  TempDir dir;
  const std::vector<uint8_t> bytes = small_valid_file(dir);
  std::mt19937 rng(1234);
  int parsed = 0, rejected = 0;
  uint64_t touched = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> m = bytes;
    const int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0:
          m[at] = uint8_t(rng());
          break;
        case 1:
          m[at] ^= uint8_t(1u << (rng() % 8));
          break;
        default:  // a large little-endian count somewhere
          m[at] = 0xff;
          break;
      }
    }
    const std::string msg = error_of([&] {
      auto f = File::from_memory(m.data(), m.size(), "mut.gguf");
      // Touch every tensor byte: under ASan a view outside the buffer fails here.
      for (const TensorInfo& t : f->tensors()) {
        for (uint64_t b = 0; b < t.n_bytes; ++b) touched += t.data[b];
      }
    });
    if (msg == "<no error>") {
      ++parsed;
    } else {
      ++rejected;
      expect_message(msg, {"mut.gguf: "});
    }
  }
  EXPECT_GT(rejected, 100);  // the mutations do hit the structure
  EXPECT_GT(parsed, 10);     // and some only touch tensor bytes or string contents
  EXPECT_GT(touched, 0u);
}

TEST(GgufBroken, HeaderFields) {
  TempDir dir;
  expect_message(open_error(dir, "empty.gguf", Bytes{}), {"empty.gguf: magic", "empty file"});
  {
    Bytes b = header(0, 0);
    b.v[3] = 'X';
    expect_message(open_error(dir, "magic.gguf", b), {"magic.gguf: magic", "47 47 55 58"});
  }
  expect_message(open_error(dir, "v1.gguf", header(0, 0, 1)),
                 {"v1.gguf: version", "version 1", "not supported"});
  expect_message(open_error(dir, "v4.gguf", header(0, 0, 4)), {"v4.gguf: version", "version 4"});
  expect_message(open_error(dir, "big_endian.gguf", header(0, 0, 0x03000000)),
                 {"big_endian.gguf: version", "big-endian"});
  {
    Bytes b = header(0, 0);
    b.v.resize(20);  // the kv count is cut
    expect_message(open_error(dir, "short_header.gguf", b),
                   {"short_header.gguf: metadata_kv_count", "truncated", "offset 16"});
  }
  expect_message(open_error(dir, "tensor_count.gguf", header(kHuge, 0).zeros(100)),
                 {"tensor_count.gguf: tensor_count", "1152921504606846976", "100 bytes"});
  expect_message(open_error(dir, "kv_count.gguf", header(0, kHuge).zeros(100)),
                 {"kv_count.gguf: metadata_kv_count", "1152921504606846976"});
  // Counts that fit alone but not together.
  expect_message(open_error(dir, "both_counts.gguf", header(3, 4).zeros(100)),
                 {"both_counts.gguf: metadata_kv_count", "cannot fit"});
  // Version 2 has the same layout and is accepted.
  auto v2 = File::open([&] {
    const std::string path = dir.file("v2.gguf");
    test::write_bytes(path, header(0, 0, 2).v);
    return path;
  }());
  EXPECT_EQ(v2->version(), 2u);
}

TEST(GgufBroken, MetadataFields) {
  TempDir dir;
  {
    Bytes b = header(0, 1);
    b.u64(kHuge).zeros(40);  // key length
    expect_message(open_error(dir, "key_len.gguf", b),
                   {"key_len.gguf: metadata #0", "key", "length 1152921504606846976"});
  }
  {
    Bytes b = header(0, 1);
    b.str("general.name").u32(8).u64(uint64_t(1) << 62).zeros(40);
    expect_message(open_error(dir, "str_len.gguf", b), {"str_len.gguf: metadata 'general.name'",
                                                        "string value", "4611686018427387904"});
  }
  for (uint32_t elem : {0u, 8u, 9u, 12u}) {  // U8, STRING, ARRAY, F64 elements
    Bytes b = header(0, 1);
    b.str("arr").u32(9).u32(elem).u64(kHuge).zeros(64);
    const std::string name = "array_count_" + std::to_string(elem) + ".gguf";
    expect_message(open_error(dir, name, b),
                   {name + ": metadata 'arr'", "array of 1152921504606846976",
                    value_type_name(ValueType(elem))});
  }
  {
    Bytes b = header(0, 1);
    b.str("k").u32(13).u32(0);
    expect_message(open_error(dir, "value_type.gguf", b),
                   {"value_type.gguf: metadata 'k'", "unknown value type 13", "offset 33"});
  }
  {
    Bytes b = header(0, 1);
    b.str("k").u32(9).u32(77).u64(0);
    expect_message(open_error(dir, "elem_type.gguf", b),
                   {"elem_type.gguf: metadata 'k'", "unknown array element type 77"});
  }
  {
    Bytes b = header(0, 2);
    b.str("k").u32(4).u32(1).str("k").u32(4).u32(2);
    expect_message(open_error(dir, "dup_key.gguf", b),
                   {"dup_key.gguf: metadata 'k'", "duplicate key", "offset 41"});
  }
  {
    Bytes b = header(0, 1);
    b.str("deep").u32(9);
    for (int level = 0; level < 12; ++level) b.u32(9).u64(1);
    b.u32(0).u64(0);
    expect_message(open_error(dir, "deep.gguf", b),
                   {"deep.gguf: metadata 'deep'", "nested deeper than"});
  }
  {
    // Control characters in a key stay escaped: the message remains one line.
    Bytes b = header(0, 1);
    b.str("bad\nkey").u32(13);
    expect_message(open_error(dir, "ctrl_key.gguf", b), {"metadata 'bad\\x0akey'"});
  }
  {
    Bytes b = header(0, 1);
    b.str("k").u32(8).u64(5).raw("abc", 3);
    expect_message(open_error(dir, "str_trunc.gguf", b),
                   {"str_trunc.gguf: metadata 'k'", "length 5 exceeds the 3 bytes"});
  }
}

TEST(GgufBroken, AlignmentValues) {
  TempDir dir;
  struct Case {
    std::string name;
    uint32_t type;
    uint64_t value;
    std::string fragment;
  };
  const std::vector<Case> cases = {{"align0.gguf", 4, 0, "alignment 0"},
                                   {"align48.gguf", 4, 48, "alignment 48"},
                                   {"align_huge.gguf", 10, uint64_t(1) << 40, "1099511627776"},
                                   {"align_neg.gguf", 5, 0xffffffffu, "alignment -1"},
                                   {"align_f32.gguf", 6, 0x42000000, "got F32"}};
  for (const Case& c : cases) {
    Bytes b = header(0, 1);
    b.str("general.alignment").u32(c.type);
    if (c.type == 10) {
      b.u64(c.value);
    } else {
      b.u32(uint32_t(c.value));
    }
    expect_message(open_error(dir, c.name, b),
                   {c.name + ": metadata 'general.alignment'", c.fragment});
  }
  {
    Bytes b = header(0, 1);
    b.str("general.alignment").u32(8).str("32");
    expect_message(open_error(dir, "align_str.gguf", b),
                   {"align_str.gguf: metadata 'general.alignment'", "got STRING"});
  }
}

TEST(GgufBroken, TensorFields) {
  TempDir dir;
  expect_message(open_error(dir, "past_eof.gguf", one_tensor({16}, 0, 0, 32)),
                 {"past_eof.gguf: tensor 'w'", "64 bytes", "past the end"});
  expect_message(open_error(dir, "offset_eof.gguf", one_tensor({4}, 0, 1 << 20, 32)),
                 {"offset_eof.gguf: tensor 'w'", "1048576", "past the end"});
  // An aligned offset near 2^64 must not wrap around.
  expect_message(open_error(dir, "offset_wrap.gguf", one_tensor({4}, 0, ~uint64_t(31), 32)),
                 {"offset_wrap.gguf: tensor 'w'", "past the end"});
  expect_message(open_error(dir, "misaligned.gguf", one_tensor({4}, 0, 4, 64)),
                 {"misaligned.gguf: tensor 'w'", "data offset 4", "alignment 32"});
  expect_message(open_error(dir, "type99.gguf", one_tensor({4}, 99, 0, 64)),
                 {"type99.gguf: tensor 'w'", "unknown tensor type number 99"});
  expect_message(open_error(dir, "type4.gguf", one_tensor({32}, 4, 0, 64)),  // removed Q4_2
                 {"type4.gguf: tensor 'w'", "unknown tensor type number 4"});
  expect_message(open_error(dir, "block.gguf", one_tensor({33}, 2, 0, 64)),
                 {"block.gguf: tensor 'w'", "ne[0] = 33", "Q4_0 block size 32"});
  expect_message(open_error(dir, "ne_overflow.gguf", one_tensor({1 << 20, 1ull << 44}, 0, 0, 64)),
                 {"ne_overflow.gguf: tensor 'w'", "overflows int64"});
  expect_message(open_error(dir, "bytes_overflow.gguf", one_tensor({1ull << 62}, 0, 0, 64)),
                 {"bytes_overflow.gguf: tensor 'w'", "overflows 64 bits"});
  expect_message(open_error(dir, "ne_range.gguf", one_tensor({1ull << 63}, 0, 0, 64)),
                 {"ne_range.gguf: tensor 'w'", "ne[0] = 9223372036854775808", "out of range"});
  {
    Bytes b = header(1, 0);
    b.str("w").u32(0).u32(0).u64(0).zeros(64);
    expect_message(open_error(dir, "ndims0.gguf", b),
                   {"ndims0.gguf: tensor 'w'", "n_dims 0", "1..4"});
  }
  {
    Bytes b = header(1, 0);
    tensor_info(b, "w", {1, 1, 1, 1, 1}, 0, 0);
    b.zeros(64);
    expect_message(open_error(dir, "ndims5.gguf", b),
                   {"ndims5.gguf: tensor 'w'", "n_dims 5", "1..4"});
  }
  {
    Bytes b = header(2, 0);
    tensor_info(b, "w", {4}, 0, 0);
    tensor_info(b, "w", {4}, 0, 32);
    b.pad_to(32).zeros(64);
    expect_message(open_error(dir, "dup_tensor.gguf", b),
                   {"dup_tensor.gguf: tensor 'w'", "duplicate tensor name"});
  }
  {
    Bytes b = header(2, 0);
    tensor_info(b, "a", {16}, 0, 0);  // bytes [0, 64)
    tensor_info(b, "b", {4}, 0, 32);  // bytes [32, 48): inside a
    b.pad_to(32).zeros(64);
    expect_message(open_error(dir, "overlap.gguf", b),
                   {"overlap.gguf: tensor 'b'", "overlaps tensor 'a'"});
  }
  {
    Bytes b = header(1, 0);
    b.u64(kHuge).zeros(64);  // name length
    expect_message(open_error(dir, "name_len.gguf", b),
                   {"name_len.gguf: tensor #0", "name", "length 1152921504606846976"});
  }
}

TEST(GgufBroken, KnownButUnsupportedTypesStillParse) {
  TempDir dir;
  const std::string path = dir.file("q4_1.gguf");
  test::write_bytes(path, one_tensor({32, 2}, 3, 0, 64).v);  // Q4_1: 20 bytes per block
  auto f = File::open(path);
  ASSERT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(f->tensors()[0].raw_type, 3u);
  EXPECT_EQ(f->tensors()[0].n_bytes, 40u);
  EXPECT_FALSE(tensor_type_supported(f->tensors()[0].raw_type));
  EXPECT_EQ(tensor_type_name(f->tensors()[0].raw_type), "Q4_1");
}

TEST(GgufBroken, ZeroSizedTensorsMayShareAnOffset) {
  TempDir dir;
  Bytes b = header(3, 0);
  tensor_info(b, "empty_a", {0}, 0, 0);
  tensor_info(b, "empty_b", {4, 0}, 0, 0);
  tensor_info(b, "x", {4}, 0, 0);
  b.pad_to(32).zeros(32);
  const std::string path = dir.file("zero.gguf");
  test::write_bytes(path, b.v);
  auto f = File::open(path);
  EXPECT_EQ(f->tensors().size(), 3u);
  EXPECT_EQ(f->find_tensor("empty_b")->n_bytes, 0u);
  EXPECT_EQ(f->find_tensor("x")->n_bytes, 16u);
}

TEST(GgufBroken, MissingFileAndDirectory) {
  TempDir dir;
  const std::string missing = dir.file("missing.gguf");
  expect_message(error_of([&] { File::open(missing); }), {missing, "cannot open"});
  expect_message(error_of([&] { File::open(dir.path().string()); }),
                 {dir.path().string(), "not a regular file"});
  expect_message(error_of([&] { File::from_memory(nullptr, 0, "null.gguf"); }),
                 {"null.gguf: magic"});
}

}  // namespace
}  // namespace ug::gguf
