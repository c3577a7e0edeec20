// Safetensors reader: round trips from hand-built files, broken headers, model folders.
#include "format/safetensors.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "format/format_test_util.h"
#include "util/error.h"

namespace ug {
namespace {

using nlohmann::json;
using test::error_of;
using test::expect_message;
using test::StEntry;
using test::TempDir;

std::vector<StEntry> sample_entries() {
  return {
      {"model.embed.weight", "F32", {3, 2}, test::f32_bytes({1, 2, 3, 4, 5, 6})},
      {"model.norm.weight", "BF16", {4}, test::pattern_bytes(8, 3)},
      {"model.proj.weight", "F16", {2, 2, 2}, test::pattern_bytes(16, 5)},
      {"model.position_ids", "I64", {2}, test::pattern_bytes(16, 7)},
      {"model.scalar", "F32", {}, test::f32_bytes({42})},  // rank 0: one element
      {"model.empty", "F32", {0, 5}, {}},
  };
}

std::string write_file(const TempDir& dir, const std::string& name,
                       const std::vector<uint8_t>& bytes) {
  const std::string path = dir.file(name);
  test::write_bytes(path, bytes);
  return path;
}

std::string open_error(const TempDir& dir, const std::string& name,
                       const std::vector<uint8_t>& bytes) {
  const std::string path = write_file(dir, name, bytes);
  return error_of([&] { SafetensorsFile::open(path); });
}

TEST(Safetensors, RoundTrip) {
  TempDir dir;
  const std::vector<StEntry> entries = sample_entries();
  const std::string path = write_file(
      dir, "model.safetensors", test::make_safetensors(entries, {{"format", "pt"}, {"k", "v"}}));
  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->path(), path);
  EXPECT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->metadata().at("format"), "pt");
  ASSERT_EQ(f->tensors().size(), entries.size());
  for (size_t k = 1; k < f->tensors().size(); ++k) {
    EXPECT_LT(f->tensors()[k - 1].name, f->tensors()[k].name);  // sorted
  }
  for (const StEntry& e : entries) {
    SCOPED_TRACE(e.name);
    const StTensor* t = f->find(e.name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->name, e.name);
    EXPECT_EQ(t->dtype, e.dtype);
    EXPECT_EQ(t->shape, e.shape);
    EXPECT_EQ(t->file, path);
    ASSERT_EQ(t->n_bytes, e.data.size());
    EXPECT_EQ(std::vector<uint8_t>(t->data, t->data + t->n_bytes), e.data);
  }
  EXPECT_EQ(f->find("model.scalar")->n_elements(), 1);
  EXPECT_EQ(f->find("model.empty")->n_elements(), 0);
  EXPECT_EQ(f->find("model.proj.weight")->n_elements(), 8);
  EXPECT_EQ(f->find("absent"), nullptr);
  EXPECT_EQ(f->find("model.embed.weight")->tensor_type(), TensorType::F32);
  EXPECT_EQ(f->find("model.proj.weight")->tensor_type(), TensorType::F16);
  EXPECT_EQ(f->find("model.norm.weight")->tensor_type(), TensorType::BF16);
  EXPECT_FALSE(f->find("model.position_ids")->supported());
  expect_message(error_of([&] { f->find("model.position_ids")->tensor_type(); }),
                 {path, "tensor 'model.position_ids'", "dtype I64 is not supported"});

  // The same bytes parse from memory with views into the caller's buffer.
  const std::vector<uint8_t> bytes = test::read_bytes(path);
  auto m = SafetensorsFile::from_memory(bytes.data(), bytes.size(), "mem.safetensors");
  const StTensor* e = m->find("model.embed.weight");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->data, bytes.data() + m->data_offset());
  float v[6];
  std::memcpy(v, e->data, sizeof(v));
  EXPECT_EQ(v[5], 6.0f);
}

TEST(Safetensors, DtypeTable) {
  EXPECT_EQ(st_dtype_size("F32"), 4);
  EXPECT_EQ(st_dtype_size("BF16"), 2);
  EXPECT_EQ(st_dtype_size("F8_E4M3"), 1);
  EXPECT_EQ(st_dtype_size("U64"), 8);
  EXPECT_EQ(st_dtype_size("f32"), 0);  // names are case-sensitive in the format
  EXPECT_EQ(st_dtype_size("Q4_0"), 0);
  TensorType t;
  EXPECT_TRUE(st_dtype_to_tensor_type("F16", &t));
  EXPECT_EQ(t, TensorType::F16);
  EXPECT_FALSE(st_dtype_to_tensor_type("F64", &t));
}

TEST(SafetensorsBroken, HeaderLength) {
  TempDir dir;
  expect_message(open_error(dir, "tiny.safetensors", {1, 2, 3}),
                 {"tiny.safetensors: header length", "3 bytes"});
  {
    test::Bytes b;
    b.u64(uint64_t(1) << 42).raw("{}", 2);  // claims 4 TB
    expect_message(open_error(dir, "huge.safetensors", b.v),
                   {"huge.safetensors: header length", "4398046511104", "only 2 bytes"});
  }
  {
    test::Bytes b;
    b.u64(10).raw("{}", 2);
    expect_message(open_error(dir, "short.safetensors", b.v),
                   {"short.safetensors: header length", "10 bytes claimed"});
  }
  {
    // Present in the file but beyond any real header: refused before JSON parsing.
    const size_t len = (size_t(32) << 20) + 1;
    const std::vector<uint8_t> bytes = test::make_safetensors_raw(std::string(len, ' '), 0);
    expect_message(error_of([&] {
                     SafetensorsFile::from_memory(bytes.data(), bytes.size(), "big.safetensors");
                   }),
                   {"big.safetensors: header length", std::to_string(len), "exceeds the limit"});
  }
}

TEST(SafetensorsBroken, HeaderJson) {
  TempDir dir;
  expect_message(open_error(dir, "notjson.safetensors", test::make_safetensors_raw("{\"a\": ", 0)),
                 {"notjson.safetensors: header", "not valid JSON", "byte"});
  expect_message(open_error(dir, "binary.safetensors", test::make_safetensors_raw("\xff\xfe\n", 0)),
                 {"binary.safetensors: header", "not valid JSON"});
  expect_message(open_error(dir, "empty_hdr.safetensors", test::make_safetensors_raw("", 4)),
                 {"empty_hdr.safetensors: header", "not valid JSON"});
  expect_message(open_error(dir, "array.safetensors", test::make_safetensors_raw("[1, 2]", 0)),
                 {"array.safetensors: header", "expected a JSON object, got array"});
  expect_message(open_error(dir, "dupkey.safetensors",
                            test::make_safetensors_raw(
                                R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                                2)),
                 {"dupkey.safetensors: header", "duplicate key 'a'"});
  expect_message(open_error(dir, "meta.safetensors",
                            test::make_safetensors_raw(R"({"__metadata__":{"n":1}})", 0)),
                 {"meta.safetensors: __metadata__ 'n'", "expected a string"});
  expect_message(open_error(dir, "deep.safetensors",
                            test::make_safetensors_raw(std::string(5000, '[') + "0", 0)),
                 {"deep.safetensors: header", "nested deeper than 8"});
  expect_message(
      open_error(dir, "meta2.safetensors", test::make_safetensors_raw(R"({"__metadata__":[]})", 0)),
      {"meta2.safetensors: __metadata__", "expected an object"});
}

TEST(SafetensorsBroken, TensorEntries) {
  TempDir dir;
  struct Case {
    std::string name;
    std::string header;
    size_t data_bytes;
    std::vector<std::string> fragments;
  };
  const std::vector<Case> cases = {
      {"past_end",
       R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
       8,
       {"tensor 'w'", "data_offsets", "[0, 16)", "past the end", "8 bytes"}},
      {"mismatch",
       R"({"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,16]}})",
       32,
       {"tensor 'w'", "data_offsets", "hold 16 bytes", "[2, 3] of F32 needs 24"}},
      {"dtype",
       R"({"w":{"dtype":"F7","shape":[1],"data_offsets":[0,1]}})",
       8,
       {"tensor 'w'", "dtype", "unknown dtype 'F7'"}},
      {"dtype_type",
       R"({"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})",
       8,
       {"tensor 'w'", "dtype", "expected a string"}},
      {"no_dtype",
       R"({"w":{"shape":[1],"data_offsets":[0,4]}})",
       8,
       {"tensor 'w'", "dtype: missing"}},
      {"no_shape",
       R"({"w":{"dtype":"F32","data_offsets":[0,4]}})",
       8,
       {"tensor 'w'", "shape: missing"}},
      {"neg_shape",
       R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
       8,
       {"tensor 'w'", "shape", "-1"}},
      {"float_shape",
       R"({"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})",
       8,
       {"tensor 'w'", "shape", "1.5"}},
      {"shape_overflow",
       R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
       8,
       {"tensor 'w'", "shape", "overflows"}},
      {"bytes_overflow",
       R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,4]}})",
       8,
       {"tensor 'w'", "shape", "overflows 64 bits"}},
      {"no_offsets",
       R"({"w":{"dtype":"F32","shape":[1]}})",
       8,
       {"tensor 'w'", "data_offsets: missing"}},
      {"three_offsets",
       R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})",
       8,
       {"tensor 'w'", "data_offsets", "[begin, end]"}},
      {"neg_offset",
       R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})",
       8,
       {"tensor 'w'", "data_offsets"}},
      {"reversed",
       R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})",
       8,
       {"tensor 'w'", "data_offsets", "begin 8 > end 4"}},
      {"huge_offset",
       R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,18446744073709551615]}})",
       8,
       {"tensor 'w'", "data_offsets"}},
      {"overlap",
       R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
       R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       8,
       {"tensor 'b'", "overlap tensor 'a'", "[4, 8)", "[0, 8)"}},
      {"entry_type", R"({"w":[1,2]})", 8, {"tensor 'w'", "expected an object, got array"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string file = c.name + ".safetensors";
    const std::string msg =
        open_error(dir, file, test::make_safetensors_raw(c.header, c.data_bytes));
    expect_message(msg, {file + ": "});
    for (const std::string& frag : c.fragments) expect_message(msg, {frag});
  }
}

TEST(SafetensorsBroken, EveryTruncationFails) {
  const std::vector<uint8_t> bytes = test::make_safetensors(sample_entries());
  for (size_t len = 0; len < bytes.size(); ++len) {
    const std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + long(len));
    const std::string msg =
        error_of([&] { SafetensorsFile::from_memory(prefix.data(), prefix.size(), "cut.st"); });
    SCOPED_TRACE("length " + std::to_string(len));
    expect_message(msg, {"cut.st: "});
  }
}

TEST(SafetensorsBroken, RandomCorruptionNeverCrashes) {
  const std::vector<uint8_t> bytes = test::make_safetensors(sample_entries(), {{"format", "pt"}});
  std::mt19937 rng(99);
  int parsed = 0, rejected = 0;
  uint64_t touched = 0;
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<uint8_t> m = bytes;
    const int flips = 1 + int(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      // Mostly inside the header, where the structure is.
      const size_t at = rng() % 4 ? rng() % std::min<size_t>(m.size(), 400) : rng() % m.size();
      m[at] = rng() % 2 ? uint8_t(rng()) : uint8_t("0123456789,[]{}\":"[rng() % 17]);
    }
    const std::string msg = error_of([&] {
      auto f = SafetensorsFile::from_memory(m.data(), m.size(), "mut.safetensors");
      for (const StTensor& t : f->tensors()) {
        for (uint64_t b = 0; b < t.n_bytes; ++b) touched += t.data[b];
      }
    });
    if (msg == "<no error>") {
      ++parsed;
    } else {
      ++rejected;
      expect_message(msg, {"mut.safetensors: "});
    }
  }
  EXPECT_GT(rejected, 100);
  EXPECT_GT(parsed, 10);
  EXPECT_GT(touched, 0u);
}

// A two-shard folder made from scratch (no oracle needed).
void write_sharded_folder(const TempDir& dir, const json& weight_map) {
  test::write_bytes(dir.file("model-00001-of-00002.safetensors"),
                    test::make_safetensors({{"a.weight", "F32", {2}, test::f32_bytes({1, 2})},
                                            {"b.weight", "BF16", {2}, test::pattern_bytes(4, 1)}}));
  test::write_bytes(
      dir.file("model-00002-of-00002.safetensors"),
      test::make_safetensors({{"c.weight", "F16", {1, 3}, test::pattern_bytes(6, 2)}}));
  std::ofstream(dir.file("model.safetensors.index.json"))
      << json{{"metadata", {{"total_size", 18}}}, {"weight_map", weight_map}}.dump(2);
}

const json kWeightMap = {{"a.weight", "model-00001-of-00002.safetensors"},
                         {"b.weight", "model-00001-of-00002.safetensors"},
                         {"c.weight", "model-00002-of-00002.safetensors"}};

TEST(SafetensorsModelFolder, ShardedLookup) {
  TempDir dir;
  write_sharded_folder(dir, kWeightMap);
  auto m = SafetensorsModel::open(dir.path().string());
  EXPECT_EQ(m->shards().size(), 2u);
  EXPECT_EQ(m->size(), 3u);
  EXPECT_EQ(m->tensor_names(), (std::vector<std::string>{"a.weight", "b.weight", "c.weight"}));
  const StTensor& c = m->get("c.weight");
  EXPECT_EQ(c.shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(c.tensor_type(), TensorType::F16);
  EXPECT_EQ(std::vector<uint8_t>(c.data, c.data + c.n_bytes), test::pattern_bytes(6, 2));
  EXPECT_NE(c.file.find("model-00002-of-00002.safetensors"), std::string::npos);
  float a1 = 0;
  std::memcpy(&a1, m->get("a.weight").data + 4, 4);
  EXPECT_EQ(a1, 2.0f);
  EXPECT_EQ(m->find("d.weight"), nullptr);
  expect_message(error_of([&] { m->get("d.weight"); }),
                 {dir.path().string(), "tensor 'd.weight'", "not found"});
}

TEST(SafetensorsModelFolder, SingleFileAndDirectPath) {
  TempDir dir;
  const std::string path =
      write_file(dir, "model.safetensors", test::make_safetensors(sample_entries()));
  auto by_dir = SafetensorsModel::open(dir.path().string());
  EXPECT_EQ(by_dir->size(), sample_entries().size());
  auto by_file = SafetensorsModel::open(path);
  EXPECT_EQ(by_file->size(), sample_entries().size());
  EXPECT_EQ(by_file->get("model.embed.weight").shape, (std::vector<int64_t>{3, 2}));
}

TEST(SafetensorsModelFolder, BrokenFolders) {
  {
    TempDir dir;
    expect_message(error_of([&] { SafetensorsModel::open(dir.path().string()); }),
                   {dir.path().string(), "no model.safetensors"});
    expect_message(error_of([&] { SafetensorsModel::open(dir.file("nope")); }),
                   {dir.file("nope"), "not found"});
  }
  {
    TempDir dir;
    json wm = kWeightMap;
    wm["d.weight"] = "model-00002-of-00002.safetensors";  // not in that shard
    write_sharded_folder(dir, wm);
    expect_message(error_of([&] { SafetensorsModel::open(dir.path().string()); }),
                   {"model.safetensors.index.json: weight_map 'd.weight'", "not in shard",
                    "model-00002-of-00002.safetensors"});
  }
  {
    TempDir dir;
    json wm = kWeightMap;
    wm["c.weight"] = "../model-00002-of-00002.safetensors";
    write_sharded_folder(dir, wm);
    expect_message(error_of([&] { SafetensorsModel::open(dir.path().string()); }),
                   {"weight_map 'c.weight'", "not a plain file name"});
  }
  {
    TempDir dir;
    json wm = kWeightMap;
    wm["c.weight"] = "model-00003-of-00002.safetensors";
    write_sharded_folder(dir, wm);
    expect_message(error_of([&] { SafetensorsModel::open(dir.path().string()); }),
                   {"model-00003-of-00002.safetensors", "cannot open"});
  }
  {
    TempDir dir;
    write_sharded_folder(dir, kWeightMap);
    std::ofstream(dir.file("model.safetensors.index.json")) << "{\"weight_map\": [";
    expect_message(error_of([&] { SafetensorsModel::open(dir.path().string()); }),
                   {"model.safetensors.index.json: index", "not valid JSON"});
    std::ofstream(dir.file("model.safetensors.index.json")) << "{\"metadata\": {}}";
    expect_message(error_of([&] { SafetensorsModel::open(dir.path().string()); }),
                   {"model.safetensors.index.json: weight_map: missing"});
    std::ofstream(dir.file("model.safetensors.index.json")) << "{\"weight_map\": {\"a\": 3}}";
    expect_message(error_of([&] { SafetensorsModel::open(dir.path().string()); }),
                   {"weight_map 'a'", "expected a shard file name"});
  }
  {
    // A broken shard reports the shard's own path.
    TempDir dir;
    write_sharded_folder(dir, kWeightMap);
    test::write_bytes(dir.file("model-00002-of-00002.safetensors"), {1, 0, 0});
    expect_message(error_of([&] { SafetensorsModel::open(dir.path().string()); }),
                   {"model-00002-of-00002.safetensors: header length"});
  }
}

}  // namespace
}  // namespace ug
