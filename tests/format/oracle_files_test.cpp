// The readers on the oracle pack: every GGUF against models/manifest.json, the real vocabulary,
// and the Hugging Face twin (single file, and re-sharded into a temporary folder).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "format/format_test_util.h"
#include "format/gguf.h"
#include "format/safetensors.h"
#include "test_support.h"
#include "util/error.h"

namespace ug {
namespace {

using nlohmann::json;

json load_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

// "blk.3.attn_q.weight" -> "attn_q.weight", as the manifest groups names.
std::string strip_block(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return name;
  const size_t dot = name.find('.', 4);
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

// A manifest metadata value must equal what the getters return.
void expect_metadata(const gguf::File& f, const std::string& key, const json& want) {
  SCOPED_TRACE(f.path() + " " + key);
  if (want.is_string()) {
    EXPECT_EQ(f.get_string(key), want.get<std::string>());
  } else if (want.is_boolean()) {
    EXPECT_EQ(f.get_bool(key), want.get<bool>());
  } else if (want.is_number_integer()) {
    EXPECT_EQ(f.get_int(key), want.get<int64_t>());
  } else if (want.is_number_float()) {
    EXPECT_NEAR(f.get_float(key), want.get<double>(), std::abs(want.get<double>()) * 1e-6);
  } else if (want.is_array()) {
    const gguf::Value* v = f.find(key);
    ASSERT_NE(v, nullptr);
    ASSERT_EQ(v->array_size(), want.size());
    if (!want.empty() && want[0].is_boolean()) {
      const std::vector<int64_t> got = f.get_int_array(key);
      for (size_t k = 0; k < want.size(); ++k) EXPECT_EQ(got[k] != 0, want[k].get<bool>());
    } else if (!want.empty() && want[0].is_number_integer()) {
      EXPECT_EQ(f.get_int_array(key), want.get<std::vector<int64_t>>());
    } else if (!want.empty()) {
      const std::vector<double> got = f.get_float_array(key);
      for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(got[k], want[k].get<double>(), 1e-6);
    }
  } else {
    ADD_FAILURE() << "unexpected manifest value " << want.dump();
  }
}

TEST(OracleGguf, EveryFileMatchesTheManifest) {
  UG_REQUIRE_ORACLE(oracle);
  const json manifest = load_json(oracle + "/models/manifest.json");
  int n_gguf = 0;
  for (const auto& [rel, entry] : manifest.items()) {
    if (rel.size() < 5 || rel.substr(rel.size() - 5) != ".gguf") continue;
    ++n_gguf;
    SCOPED_TRACE(rel);
    auto f = gguf::File::open(oracle + "/" + rel);
    EXPECT_EQ(f->file_size(), entry["bytes"].get<uint64_t>());
    EXPECT_EQ(f->version(), 3u);
    ASSERT_EQ(f->tensors().size(), entry["n_tensors"].get<size_t>());

    std::map<std::string, int> type_counts;
    for (const gguf::TensorInfo& t : f->tensors()) {
      const std::string type = tensor_type_name(t.raw_type);
      ++type_counts[type];
      const json& allowed = entry["tensor_types_by_name"][strip_block(t.name)];
      EXPECT_NE(std::find(allowed.begin(), allowed.end(), type), allowed.end())
          << t.name << " is " << type;
      EXPECT_TRUE(tensor_type_supported(t.raw_type)) << t.name;
      EXPECT_EQ((t.offset - f->data_offset()) % f->alignment(), 0u) << t.name;
    }
    EXPECT_EQ(type_counts, (entry["tensor_types"].get<std::map<std::string, int>>()));

    for (const auto& [key, want] : entry["metadata"].items()) {
      if (key == "n_vocab") {
        EXPECT_EQ(int64_t(f->get_string_array("tokenizer.ggml.tokens").size()),
                  want.get<int64_t>());
      } else if (key == "has_chat_template") {
        EXPECT_EQ(f->has("tokenizer.chat_template"), want.get<bool>());
      } else {
        expect_metadata(*f, key, want);
      }
    }
  }
  EXPECT_EQ(n_gguf, 9);
}

TEST(OracleGguf, TinyAShapesAndTypes) {
  UG_REQUIRE_ORACLE(oracle);
  auto f = gguf::File::open(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  EXPECT_EQ(f->tensors().size(), 86u);
  EXPECT_EQ(f->get_string("general.architecture"), "gemma4");
  EXPECT_EQ(f->get_int("gemma4.block_count"), 6);
  EXPECT_EQ(f->get_int("gemma4.embedding_length"), 256);
  EXPECT_EQ(f->get_int_array("gemma4.attention.head_count_kv"),
            (std::vector<int64_t>{2, 2, 2, 2, 2, 1}));
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.tokens").size(), 4198u);

  const gguf::TensorInfo* embd = f->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->n_dims, 2);
  EXPECT_EQ(embd->ne[0], 256);
  EXPECT_EQ(embd->ne[1], 4198);
  EXPECT_EQ(embd->type, TensorType::F32);
  EXPECT_EQ(embd->n_bytes, 256u * 4198 * 4);
  const gguf::TensorInfo* q5 = f->find_tensor("blk.5.attn_q.weight");  // full layer: 4 x 128
  ASSERT_NE(q5, nullptr);
  EXPECT_EQ(q5->ne[0], 256);
  EXPECT_EQ(q5->ne[1], 512);
  const gguf::TensorInfo* rope = f->find_tensor("rope_freqs.weight");
  ASSERT_NE(rope, nullptr);
  EXPECT_EQ(rope->n_dims, 1);
  EXPECT_EQ(rope->ne[0], 64);
  float first = 0, last = 0;
  std::memcpy(&first, rope->data, 4);
  std::memcpy(&last, rope->data + 63 * 4, 4);
  EXPECT_EQ(first, 1.0f);
  EXPECT_EQ(last, 1e30f);
  EXPECT_EQ(f->find_tensor("blk.5.attn_v.weight"), nullptr);  // full layer: V = raw K
  EXPECT_NE(f->find_tensor("blk.4.attn_v.weight"), nullptr);

  auto q4 = gguf::File::open(oracle + "/models/tiny-a/gemma4-tiny-a-q4_0.gguf");
  EXPECT_EQ(q4->tensors().size(), 86u);
  EXPECT_EQ(q4->find_tensor("token_embd.weight")->type, TensorType::Q6_K);
  EXPECT_EQ(q4->find_tensor("token_embd.weight")->n_bytes, 4198u * 210);
  EXPECT_EQ(q4->find_tensor("blk.0.ffn_up.weight")->type, TensorType::Q4_0);
}

TEST(OracleGguf, RealVocabulary) {
  UG_REQUIRE_ORACLE(oracle);
  auto f = gguf::File::open(oracle + "/tokenizer/ggml-vocab-gemma4.gguf");
  EXPECT_TRUE(f->tensors().empty());
  const auto& tokens = f->get_string_array("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 262144u);
  EXPECT_EQ(tokens[2], "<bos>");
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.merges").size(), 514906u);
  EXPECT_EQ(f->get_int("tokenizer.ggml.bos_token_id"), 2);
}

TEST(OracleGguf, EveryGgufInThePackOpens) {
  UG_REQUIRE_ORACLE(oracle);
  int n = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(oracle)) {
    if (e.path().extension() != ".gguf") continue;
    SCOPED_TRACE(e.path().string());
    auto f = gguf::File::open(e.path().string());
    EXPECT_FALSE(f->metadata().empty());
    ++n;
  }
  EXPECT_GE(n, 12);
}

TEST(OracleSafetensors, HfTwinMatchesTheF32Gguf) {
  UG_REQUIRE_ORACLE(oracle);
  auto model = SafetensorsModel::open(oracle + "/models/tiny-a/hf");
  EXPECT_EQ(model->size(), 85u);  // the GGUF's 86 less rope_freqs
  ASSERT_EQ(model->shards().size(), 1u);
  const StTensor& embd = model->get("model.language_model.embed_tokens.weight");
  EXPECT_EQ(embd.dtype, "F32");
  EXPECT_EQ(embd.shape, (std::vector<int64_t>{4198, 256}));
  EXPECT_EQ(embd.tensor_type(), TensorType::F32);
  EXPECT_EQ(embd.n_bytes, 4198u * 256 * 4);
  EXPECT_EQ(model->get("model.language_model.layers.0.layer_scalar").shape,
            std::vector<int64_t>{1});
  EXPECT_EQ(model->find("model.language_model.layers.5.self_attn.v_proj.weight"), nullptr);
  EXPECT_NE(model->find("model.language_model.layers.4.self_attn.v_proj.weight"), nullptr);
  test::expect_message(test::error_of([&] { model->get("lm_head.weight"); }),
                       {"tensor 'lm_head.weight'", "not found"});

  // Same values as the GGUF (ggml {in, out} = HF [out, in]).
  auto g = gguf::File::open(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"token_embd.weight", "model.language_model.embed_tokens.weight"},
      {"blk.5.attn_q.weight", "model.language_model.layers.5.self_attn.q_proj.weight"},
      {"blk.0.ffn_down.weight", "model.language_model.layers.0.mlp.down_proj.weight"},
      {"output_norm.weight", "model.language_model.norm.weight"},
  };
  for (const auto& [gname, hname] : pairs) {
    SCOPED_TRACE(gname);
    const gguf::TensorInfo* gt = g->find_tensor(gname);
    const StTensor& ht = model->get(hname);
    ASSERT_NE(gt, nullptr);
    ASSERT_EQ(gt->n_bytes, ht.n_bytes);
    ASSERT_EQ(int(ht.shape.size()), gt->n_dims);
    for (int d = 0; d < gt->n_dims; ++d) EXPECT_EQ(ht.shape[ht.shape.size() - 1 - d], gt->ne[d]);
    EXPECT_EQ(std::memcmp(gt->data, ht.data, ht.n_bytes), 0);
  }
}

TEST(OracleSafetensors, ReshardedFolderGivesTheSameViews) {
  UG_REQUIRE_ORACLE(oracle);
  auto single = SafetensorsFile::open(oracle + "/models/tiny-a/hf/model.safetensors");
  test::TempDir dir;
  // Split the tensors over three shards, in name order.
  std::vector<std::vector<test::StEntry>> shards(3);
  json weight_map = json::object();
  const auto& all = single->tensors();
  for (size_t k = 0; k < all.size(); ++k) {
    const size_t s = k * 3 / all.size();
    const StTensor& t = all[k];
    shards[s].push_back(
        {t.name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.n_bytes)});
    weight_map[t.name] = "model-0000" + std::to_string(s + 1) + "-of-00003.safetensors";
  }
  for (size_t s = 0; s < shards.size(); ++s) {
    test::write_bytes(dir.file("model-0000" + std::to_string(s + 1) + "-of-00003.safetensors"),
                      test::make_safetensors(shards[s], {{"format", "pt"}}));
  }
  std::ofstream(dir.file("model.safetensors.index.json"))
      << json{{"metadata", {{"total_size", 28314144}}}, {"weight_map", weight_map}}.dump(1);

  auto model = SafetensorsModel::open(dir.path().string());
  EXPECT_EQ(model->shards().size(), 3u);
  ASSERT_EQ(model->size(), all.size());
  std::vector<std::string> names;
  for (const StTensor& t : all) names.push_back(t.name);
  EXPECT_EQ(model->tensor_names(), names);
  for (const StTensor& t : all) {
    const StTensor& r = model->get(t.name);
    EXPECT_EQ(r.shape, t.shape);
    EXPECT_EQ(r.dtype, t.dtype);
    ASSERT_EQ(r.n_bytes, t.n_bytes);
    EXPECT_EQ(std::memcmp(r.data, t.data, t.n_bytes), 0) << t.name;
    EXPECT_NE(r.file.find("-of-00003.safetensors"), std::string::npos);
  }
  EXPECT_EQ(model->shards()[0]->metadata().at("format"), "pt");
}

}  // namespace
}  // namespace ug
