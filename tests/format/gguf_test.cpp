// GGUF writer -> reader round trips: every metadata type, tensor views, alignment, writer failures.
#include "format/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <stdexcept>

#include "format/format_test_util.h"
#include "util/error.h"

namespace ug::gguf {
namespace {

using test::error_of;
using test::expect_message;
using test::TempDir;

Value scalar_u(ValueType t, uint64_t u) {
  Value v;
  v.type = t;
  v.u = u;
  if (u <= uint64_t(std::numeric_limits<int64_t>::max())) v.i = int64_t(u);
  return v;
}
Value scalar_i(ValueType t, int64_t i) {
  Value v;
  v.type = t;
  v.i = i;
  return v;
}
Value scalar_f(ValueType t, double f) {
  Value v;
  v.type = t;
  v.f = f;
  return v;
}
Value int_array(ValueType elem, std::vector<int64_t> ints) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = elem;
  v.ints = std::move(ints);
  return v;
}
Value float_array(ValueType elem, std::vector<double> floats) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = elem;
  v.floats = std::move(floats);
  return v;
}
Value string_array(std::vector<std::string> strs) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = ValueType::STRING;
  v.strs = std::move(strs);
  return v;
}
Value nested_array(std::vector<Value> arr) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = ValueType::ARRAY;
  v.arr = std::move(arr);
  return v;
}

// Compares the fields that matter for the value's type.
void expect_same(const Value& got, const Value& want, const std::string& key) {
  SCOPED_TRACE(key);
  ASSERT_EQ(got.type, want.type);
  switch (want.type) {
    case ValueType::U8:
    case ValueType::U16:
    case ValueType::U32:
    case ValueType::U64:
      EXPECT_EQ(got.u, want.u);
      if (want.u <= uint64_t(std::numeric_limits<int64_t>::max())) {
        EXPECT_EQ(got.i, int64_t(want.u));
      }
      break;
    case ValueType::I8:
    case ValueType::I16:
    case ValueType::I32:
    case ValueType::I64:
    case ValueType::BOOL:
      EXPECT_EQ(got.i, want.i);
      break;
    case ValueType::F32:
    case ValueType::F64:
      EXPECT_EQ(got.f, want.f);
      break;
    case ValueType::STRING:
      EXPECT_EQ(got.s, want.s);
      break;
    case ValueType::ARRAY:
      ASSERT_EQ(got.elem_type, want.elem_type);
      EXPECT_EQ(got.array_size(), want.array_size());
      EXPECT_EQ(got.ints, want.ints);
      EXPECT_EQ(got.floats, want.floats);
      EXPECT_EQ(got.strs, want.strs);
      ASSERT_EQ(got.arr.size(), want.arr.size());
      for (size_t k = 0; k < want.arr.size(); ++k) {
        expect_same(got.arr[k], want.arr[k], key + "[" + std::to_string(k) + "]");
      }
      break;
  }
}

std::vector<KeyValue> every_metadata_type() {
  std::vector<KeyValue> kvs;
  kvs.push_back({"t.u8", scalar_u(ValueType::U8, 200)});
  kvs.push_back({"t.i8", scalar_i(ValueType::I8, -100)});
  kvs.push_back({"t.u16", scalar_u(ValueType::U16, 60000)});
  kvs.push_back({"t.i16", scalar_i(ValueType::I16, -30000)});
  kvs.push_back({"t.u32", scalar_u(ValueType::U32, 4000000000u)});
  kvs.push_back({"t.i32", scalar_i(ValueType::I32, -2000000000)});
  kvs.push_back({"t.f32", scalar_f(ValueType::F32, 1.5)});
  kvs.push_back({"t.bool_true", scalar_i(ValueType::BOOL, 1)});
  kvs.push_back({"t.bool_false", scalar_i(ValueType::BOOL, 0)});
  Value s;
  s.type = ValueType::STRING;
  s.s = std::string("h\xc3\xa9llo\n\0world", 13);  // UTF-8, newline and an embedded NUL
  kvs.push_back({"t.string", s});
  Value empty_s;
  empty_s.type = ValueType::STRING;
  kvs.push_back({"t.string_empty", empty_s});
  kvs.push_back({"t.u64", scalar_u(ValueType::U64, (uint64_t(1) << 63) + 5)});
  kvs.push_back({"t.i64", scalar_i(ValueType::I64, -(int64_t(1) << 62) - 3)});
  kvs.push_back({"t.f64", scalar_f(ValueType::F64, M_PI)});

  kvs.push_back({"a.u8", int_array(ValueType::U8, {0, 1, 255})});
  kvs.push_back({"a.i8", int_array(ValueType::I8, {-128, 0, 127})});
  kvs.push_back({"a.u16", int_array(ValueType::U16, {0, 65535})});
  kvs.push_back({"a.i16", int_array(ValueType::I16, {-32768, 32767})});
  kvs.push_back({"a.u32", int_array(ValueType::U32, {0, 4294967295})});
  kvs.push_back({"a.i32", int_array(ValueType::I32, {-2147483648LL, 2147483647})});
  kvs.push_back({"a.u64", int_array(ValueType::U64, {0, 1, -1})});  // -1 = 2^64-1 bit-cast
  kvs.push_back({"a.i64", int_array(ValueType::I64, {std::numeric_limits<int64_t>::min(), 7})});
  kvs.push_back({"a.f32", float_array(ValueType::F32, {0.25, -3.5, double(1e30f)})});
  kvs.push_back({"a.f64", float_array(ValueType::F64, {1e-300, M_E})});
  kvs.push_back({"a.bool", int_array(ValueType::BOOL, {1, 0, 1, 1})});
  kvs.push_back({"a.string", string_array({"<pad>", "", "\xe2\x96\x81the", "a b"})});
  kvs.push_back({"a.empty", int_array(ValueType::I32, {})});
  kvs.push_back({"a.nested_i32",
                 nested_array({int_array(ValueType::I32, {1, 2, 3}), int_array(ValueType::I32, {}),
                               int_array(ValueType::U8, {9})})});
  kvs.push_back({"a.nested_str", nested_array({string_array({"x", "y"}), string_array({"z"})})});
  kvs.push_back(
      {"a.nested3",
       nested_array({nested_array({float_array(ValueType::F32, {2.0}), string_array({"deep"})})})});
  return kvs;
}

TEST(GgufRoundTrip, EveryMetadataType) {
  TempDir dir;
  const std::string path = dir.file("meta.gguf");
  const std::vector<KeyValue> kvs = every_metadata_type();
  Writer w;
  for (const KeyValue& kv : kvs) w.set(kv.key, kv.value);
  w.write(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  auto f = File::open(path);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_TRUE(f->tensors().empty());
  ASSERT_EQ(f->metadata().size(), kvs.size());
  for (size_t k = 0; k < kvs.size(); ++k) {
    EXPECT_EQ(f->metadata()[k].key, kvs[k].key);  // order is kept
    expect_same(f->metadata()[k].value, kvs[k].value, kvs[k].key);
  }
  // Nested array elements are themselves arrays with their own element type.
  const Value* nested = f->find("a.nested_i32");
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->arr[2].elem_type, ValueType::U8);
  EXPECT_EQ(nested->arr[2].ints, std::vector<int64_t>{9});
}

TEST(GgufRoundTrip, TypedSettersAndGetters) {
  TempDir dir;
  const std::string path = dir.file("typed.gguf");
  Writer w;
  w.set_string("general.architecture", "gemma4");
  w.set_u32("gemma4.block_count", 6);
  w.set_i32("neg", -7);
  w.set_u64("big", std::numeric_limits<uint64_t>::max());
  w.set_f32("eps", 1e-6f);
  w.set_bool("flag", true);
  w.set_string_array("tokens", {"<pad>", "<eos>", "<bos>"});
  w.set_i32_array("ids", {4194, 4192});
  w.set_f32_array("scales", {0.5f, 2.0f});
  w.set_bool_array("mask", {true, false, true});
  w.set_u32("gemma4.block_count", 48);  // replaces in place
  w.write(path);

  auto f = File::open(path);
  ASSERT_EQ(f->metadata().size(), 10u);
  EXPECT_EQ(f->metadata()[1].key, "gemma4.block_count");
  EXPECT_EQ(f->get_string("general.architecture"), "gemma4");
  EXPECT_EQ(f->get_int("gemma4.block_count"), 48);
  EXPECT_EQ(f->get_int("neg"), -7);
  EXPECT_EQ(f->get_int("flag"), 1);
  EXPECT_EQ(f->get_float("eps"), double(1e-6f));
  EXPECT_EQ(f->get_float("gemma4.block_count"), 48.0);
  EXPECT_EQ(f->get_float("big"), double(std::numeric_limits<uint64_t>::max()));
  EXPECT_TRUE(f->get_bool("flag"));
  EXPECT_EQ(f->get_string_array("tokens"), (std::vector<std::string>{"<pad>", "<eos>", "<bos>"}));
  EXPECT_EQ(f->get_int_array("ids"), (std::vector<int64_t>{4194, 4192}));
  EXPECT_EQ(f->get_int_array("mask"), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(f->get_float_array("scales"), (std::vector<double>{0.5, 2.0}));
  EXPECT_EQ(f->get_float_array("ids"), (std::vector<double>{4194, 4192}));
  EXPECT_EQ(f->opt_int("gemma4.block_count"), 48);
  EXPECT_EQ(f->opt_int("absent"), std::nullopt);
  EXPECT_EQ(f->opt_string("absent"), std::nullopt);
  EXPECT_EQ(f->opt_float("absent"), std::nullopt);
  EXPECT_EQ(f->opt_string("general.architecture"), "gemma4");
  EXPECT_TRUE(f->has("eps"));
  EXPECT_FALSE(f->has("absent"));

  expect_message(error_of([&] { f->get_int("absent"); }), {path, "metadata 'absent'", "missing"});
  expect_message(error_of([&] { f->get_string("gemma4.block_count"); }),
                 {path, "'gemma4.block_count'", "expected STRING, got U32"});
  expect_message(error_of([&] { f->get_int("tokens"); }),
                 {"'tokens'", "expected an integer, got ARRAY of STRING"});
  expect_message(error_of([&] { f->get_int("big"); }),
                 {"'big'", "18446744073709551615", "does not fit"});
  expect_message(error_of([&] { f->get_bool("neg"); }), {"'neg'", "expected BOOL, got I32"});
  expect_message(error_of([&] { f->get_string_array("ids"); }), {"'ids'", "ARRAY of I32"});
  expect_message(error_of([&] { f->get_int_array("scales"); }), {"'scales'", "ARRAY of F32"});
  expect_message(error_of([&] { f->opt_int("general.architecture"); }),
                 {"'general.architecture'", "got STRING"});
}

TEST(GgufRoundTrip, U64ArrayElementsBeyondInt64AreReported) {
  TempDir dir;
  const std::string path = dir.file("u64.gguf");
  Writer w;
  w.set("small", int_array(ValueType::U64, {1, 2}));
  w.set("huge", int_array(ValueType::U64, {3, -1}));
  w.write(path);
  auto f = File::open(path);
  EXPECT_EQ(f->get_int_array("small"), (std::vector<int64_t>{1, 2}));
  expect_message(error_of([&] { f->get_int_array("huge"); }),
                 {"'huge'", "element 1", "18446744073709551615"});
  EXPECT_EQ(f->get_float_array("huge")[1], 18446744073709551615.0);
}

struct TensorCase {
  std::string name;
  TensorType type;
  std::vector<int64_t> ne;
  uint64_t n_bytes;
};

class GgufTensors : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufTensors, ViewsHaveTheWrittenBytesAtAlignedOffsets) {
  const uint32_t alignment = GetParam();
  const std::vector<TensorCase> cases = {
      {"f32.vec", TensorType::F32, {3}, 12},  // 12 bytes: forces padding
      {"f16.mat", TensorType::F16, {5, 2}, 20},
      {"q8_0.mat", TensorType::Q8_0, {64, 2}, 2 * 2 * 34},
      {"q4_k.row", TensorType::Q4_K, {256}, 144},
      {"q6_k.mat", TensorType::Q6_K, {512, 3}, 2 * 3 * 210},
      {"bf16.3d", TensorType::BF16, {7, 3, 2}, 7 * 3 * 2 * 2},
      {"q4_0.4d", TensorType::Q4_0, {32, 1, 2, 2}, 4 * 18},
      {"empty", TensorType::F32, {0, 4}, 0},
      {"q5_k.row", TensorType::Q5_K, {256}, 176},
  };
  TempDir dir;
  const std::string path = dir.file("tensors.gguf");
  Writer w(alignment);
  w.set_string("general.name", "views");
  std::vector<std::vector<uint8_t>> payloads;
  for (size_t k = 0; k < cases.size(); ++k) {
    payloads.push_back(test::pattern_bytes(cases[k].n_bytes, uint8_t(k * 31 + 1)));
  }
  for (size_t k = 0; k < cases.size(); ++k) {
    w.add_tensor_bytes(cases[k].name, cases[k].type, cases[k].ne, payloads[k].data());
  }
  w.write(path);

  auto f = File::open(path);
  EXPECT_EQ(f->alignment(), alignment);
  EXPECT_EQ(f->data_offset() % alignment, 0u);
  if (alignment == 32) {
    EXPECT_FALSE(f->has("general.alignment"));
  } else {
    EXPECT_EQ(f->get_int("general.alignment"), alignment);
  }
  ASSERT_EQ(f->tensors().size(), cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    const TensorCase& c = cases[k];
    SCOPED_TRACE(c.name);
    const TensorInfo* t = f->find_tensor(c.name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t, &f->tensors()[k]);
    EXPECT_EQ(t->type, c.type);
    EXPECT_EQ(t->raw_type, uint32_t(c.type));
    EXPECT_EQ(t->n_dims, int(c.ne.size()));
    int64_t n_elements = 1;
    for (size_t d = 0; d < 4; ++d) {
      const int64_t want = d < c.ne.size() ? c.ne[d] : 1;
      EXPECT_EQ(t->ne[d], want) << "dim " << d;
      n_elements *= want;
    }
    EXPECT_EQ(t->n_elements(), n_elements);
    EXPECT_EQ(t->n_bytes, c.n_bytes);
    EXPECT_EQ((t->offset - f->data_offset()) % alignment, 0u);
    EXPECT_LE(t->offset + t->n_bytes, f->file_size());
    EXPECT_EQ(std::vector<uint8_t>(t->data, t->data + t->n_bytes), payloads[k]);
  }
  EXPECT_EQ(f->find_tensor("absent"), nullptr);

  // The same bytes parsed from memory give the same views relative to the buffer.
  const std::vector<uint8_t> bytes = test::read_bytes(path);
  auto m = File::from_memory(bytes.data(), bytes.size(), "mem.gguf");
  EXPECT_EQ(m->path(), "mem.gguf");
  ASSERT_EQ(m->tensors().size(), cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    EXPECT_EQ(m->tensors()[k].offset, f->tensors()[k].offset);
    EXPECT_EQ(m->tensors()[k].data, bytes.data() + m->tensors()[k].offset);
  }
}

INSTANTIATE_TEST_SUITE_P(Alignments, GgufTensors, ::testing::Values(32u, 64u, 1u, 256u));

TEST(GgufWriter, ProducerReceivesZeroedBufferOfTheTensorSize) {
  TempDir dir;
  const std::string path = dir.file("producer.gguf");
  Writer w;
  uint64_t seen = 0;
  bool zeroed = true;
  w.add_tensor("t", TensorType::Q8_0, {64, 3}, [&](uint8_t* out, uint64_t n) {
    seen = n;
    for (uint64_t k = 0; k < n; ++k) zeroed = zeroed && out[k] == 0;
    for (uint64_t k = 0; k < n; ++k) out[k] = uint8_t(k);
  });
  w.write(path);
  EXPECT_EQ(seen, 3u * 2 * 34);
  EXPECT_TRUE(zeroed);
  auto f = File::open(path);
  EXPECT_EQ(f->tensors()[0].data[100], 100);
}

TEST(GgufWriter, FailingProducerLeavesNoFile) {
  TempDir dir;
  const std::string path = dir.file("fail.gguf");
  Writer w;
  w.add_tensor("ok", TensorType::F32, {4}, [](uint8_t*, uint64_t) {});
  w.add_tensor("bad", TensorType::F32, {4},
               [](uint8_t*, uint64_t) { throw std::runtime_error("source tensor unreadable"); });
  EXPECT_THROW(w.write(path), std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(GgufWriter, ReplacesAnExistingFileOnlyWhenComplete) {
  TempDir dir;
  const std::string path = dir.file("model.gguf");
  Writer first;
  first.set_u32("version", 1);
  first.write(path);
  Writer broken;
  broken.set_u32("version", 2);
  broken.add_tensor("t", TensorType::F32, {1},
                    [](uint8_t*, uint64_t) { throw ug::Error("conversion failed"); });
  EXPECT_THROW(broken.write(path), ug::Error);
  EXPECT_EQ(File::open(path)->get_int("version"), 1);  // the old file is untouched
  Writer second;
  second.set_u32("version", 2);
  second.write(path);
  EXPECT_EQ(File::open(path)->get_int("version"), 2);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(GgufWriter, RejectsBadInputsWithNamedErrors) {
  TempDir dir;
  {
    Writer w;
    expect_message(error_of([&] { w.add_tensor_bytes("q", TensorType::Q4_0, {33}, nullptr); }),
                   {"tensor 'q'", "ne[0] = 33", "block size 32"});
    expect_message(error_of([&] { w.add_tensor_bytes("z", TensorType::F32, {}, nullptr); }),
                   {"tensor 'z'", "0 dimensions"});
    expect_message(error_of([&] {
                     w.add_tensor_bytes("five", TensorType::F32, {1, 1, 1, 1, 1}, nullptr);
                   }),
                   {"tensor 'five'", "5 dimensions"});
    expect_message(error_of([&] { w.add_tensor_bytes("neg", TensorType::F32, {-2}, nullptr); }),
                   {"tensor 'neg'", "negative"});
    expect_message(error_of([&] { w.add_tensor_bytes("u", TensorType(4), {32}, nullptr); }),
                   {"tensor 'u'", "unknown type"});
    w.add_tensor_bytes("dup", TensorType::F32, {1}, "abcd");
    expect_message(error_of([&] { w.add_tensor_bytes("dup", TensorType::F32, {1}, "abcd"); }),
                   {"tensor 'dup'", "twice"});
  }
  {
    const std::string path = dir.file("range.gguf");
    Writer w;
    w.set("small", scalar_u(ValueType::U8, 300));
    expect_message(error_of([&] { w.write(path); }), {path, "'small'", "300", "U8"});
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  }
  {
    const std::string path = dir.file("range_array.gguf");
    Writer w;
    w.set("arr", int_array(ValueType::I8, {1, 200}));
    expect_message(error_of([&] { w.write(path); }), {path, "'arr'", "200", "I8"});
    Writer w2;
    w2.set("arr", int_array(ValueType::U16, {-1}));
    expect_message(error_of([&] { w2.write(path); }), {path, "'arr'", "-1", "U16"});
  }
  {
    const std::string path = dir.file("align.gguf");
    Writer w(48);
    expect_message(error_of([&] { w.write(path); }), {path, "alignment 48", "power of two"});
    Writer w2(64);
    w2.set_u32("general.alignment", 32);
    expect_message(error_of([&] { w2.write(path); }), {path, "general.alignment"});
  }
  {
    const std::string path = dir.file("no_such_dir/out.gguf");
    Writer w;
    expect_message(error_of([&] { w.write(path); }), {path, "cannot create"});
  }
}

}  // namespace
}  // namespace ug::gguf
