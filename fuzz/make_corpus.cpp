// Writes the small valid seed files of fuzz/corpus/{gguf,safetensors}/ with the project's writer,
// so the fuzzers start from well-formed structure. Usage: make_fuzz_corpus <corpus dir>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "util/error.h"

namespace {

using ug::TensorType;
using ug::gguf::Value;
using ug::gguf::ValueType;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 13 + seed);
  return v;
}

Value int_array(ValueType elem, std::vector<int64_t> ints) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = elem;
  v.ints = std::move(ints);
  return v;
}

void write_gguf_seeds(const std::string& dir) {
  ug::gguf::Writer().write(dir + "/empty.gguf");

  {
    ug::gguf::Writer w;
    const ValueType ints[] = {ValueType::U8,  ValueType::I8,  ValueType::U16, ValueType::I16,
                              ValueType::U32, ValueType::I32, ValueType::U64, ValueType::I64};
    for (ValueType t : ints) {
      Value v;
      v.type = t;
      v.u = 7;
      v.i = 7;
      w.set(std::string("scalar.") + ug::gguf::value_type_name(t), v);
      w.set(std::string("array.") + ug::gguf::value_type_name(t), int_array(t, {1, 2, 3}));
    }
    w.set_f32("scalar.F32", 0.5f);
    Value f64;
    f64.type = ValueType::F64;
    f64.f = 0.25;
    w.set("scalar.F64", f64);
    w.set_bool("scalar.BOOL", true);
    w.set_string("scalar.STRING", "gemma4");
    w.set_f32_array("array.F32", {1.0f, -2.0f});
    w.set_bool_array("array.BOOL", {true, false});
    w.set_string_array("array.STRING", {"a", "", "bc"});
    Value nested;
    nested.type = ValueType::ARRAY;
    nested.elem_type = ValueType::ARRAY;
    nested.arr = {int_array(ValueType::I32, {1}), int_array(ValueType::U8, {})};
    w.set("array.ARRAY", nested);
    w.write(dir + "/metadata.gguf");
  }

  {
    ug::gguf::Writer w;
    w.set_string("general.architecture", "gemma4");
    w.set_u32("gemma4.block_count", 1);
    const auto a = pattern(4 * 8 * 4, 1), b = pattern(2 * 34, 2), c = pattern(210, 3),
               d = pattern(144, 4), e = pattern(8 * 2, 5);
    w.add_tensor_bytes("token_embd.weight", TensorType::F32, {8, 4}, a.data());
    w.add_tensor_bytes("blk.0.attn_q.weight", TensorType::Q8_0, {32, 2}, b.data());
    w.add_tensor_bytes("blk.0.ffn_down.weight", TensorType::Q6_K, {256}, c.data());
    w.add_tensor_bytes("blk.0.ffn_up.weight", TensorType::Q4_K, {256}, d.data());
    w.add_tensor_bytes("output_norm.weight", TensorType::BF16, {8}, e.data());
    w.write(dir + "/tensors.gguf");
  }

  {
    ug::gguf::Writer w(64);
    const auto a = pattern(18 * 2, 6), b = pattern(6, 7);
    w.add_tensor_bytes("q4_0", TensorType::Q4_0, {32, 1, 2}, a.data());
    w.add_tensor_bytes("f16", TensorType::F16, {3}, b.data());
    w.add_tensor_bytes("empty", TensorType::F32, {0}, nullptr);
    w.write(dir + "/align64.gguf");
  }

  {
    ug::gguf::Writer w;
    w.set_string("tokenizer.ggml.model", "gemma4");
    w.set_string_array("tokenizer.ggml.tokens",
                       {"<pad>", "<eos>", "<bos>", "<unk>", "\xe2\x96\x81", "a", "b", "ab"});
    w.set_f32_array("tokenizer.ggml.scores", {0, 0, 0, 0, -1, -2, -3, -4});
    w.set_i32_array("tokenizer.ggml.token_type", {3, 3, 3, 2, 1, 1, 1, 1});
    w.set_string_array("tokenizer.ggml.merges", {"a b"});
    w.set_u32("tokenizer.ggml.bos_token_id", 2);
    w.set_i32_array("tokenizer.ggml.suppress_tokens", {3});
    w.write(dir + "/vocab.gguf");
  }
}

void write_safetensors(const std::string& path, const nlohmann::json& header,
                       const std::vector<uint8_t>& data) {
  const std::string text = header.dump();
  std::ofstream out(path, std::ios::binary);
  const uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), std::streamsize(text.size()));
  out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
  if (!out) throw ug::Error(path + ": write failed");
}

void write_safetensors_seeds(const std::string& dir) {
  using nlohmann::json;
  write_safetensors(dir + "/empty.safetensors", json::object(), {});
  json h;
  h["__metadata__"] = {{"format", "pt"}};
  h["model.embed_tokens.weight"] = {{"dtype", "F32"}, {"shape", {4, 2}}, {"data_offsets", {0, 32}}};
  h["model.norm.weight"] = {{"dtype", "BF16"}, {"shape", {2}}, {"data_offsets", {32, 36}}};
  h["model.proj.weight"] = {{"dtype", "F16"}, {"shape", {2, 1}}, {"data_offsets", {36, 40}}};
  h["model.ids"] = {{"dtype", "I64"}, {"shape", {1}}, {"data_offsets", {40, 48}}};
  h["model.scalar"] = {{"dtype", "U8"}, {"shape", json::array()}, {"data_offsets", {48, 49}}};
  write_safetensors(dir + "/small.safetensors", h, pattern(49, 9));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus dir>\n", argv[0]);
    return 2;
  }
  try {
    const std::string root = argv[1];
    std::filesystem::create_directories(root + "/gguf");
    std::filesystem::create_directories(root + "/safetensors");
    write_gguf_seeds(root + "/gguf");
    write_safetensors_seeds(root + "/safetensors");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
