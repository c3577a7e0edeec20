// `unigemma convert` / `quantize` against the oracle pack: HF twin -> GGUF bit for bit, quantizers
// against llama-quantize's files, the multimodal projector and drafter layouts, bundles, and bad
// input (one-line errors, no file left under the final name).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "kernels/kernels.h"
#include "model/gemma4/drafter.h"
#include "model/gemma4/model.h"
#include "model/gemma4/projector.h"
#include "model/gemma4/synth.h"
#include "runtime/convert.h"
#include "test_support.h"
#include "util/error.h"

namespace ug {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path scratch(const std::string& name) {
  return test::process_scratch_dir() / name;
}

std::string models(const std::string& oracle) {
  return oracle + "/models/tiny-a/";
}

OutputType type_named(const std::string& name) {
  OutputType t;
  EXPECT_TRUE(parse_output_type(name, &t)) << name;
  return t;
}

bool same_value(const gguf::Value& a, const gguf::Value& b) {
  return a.type == b.type && a.elem_type == b.elem_type && a.i == b.i && a.u == b.u &&
         (a.f == b.f || (std::isnan(a.f) && std::isnan(b.f))) && a.s == b.s && a.ints == b.ints &&
         a.floats == b.floats && a.strs == b.strs && a.arr.size() == b.arr.size();
}

// Same key set and values, except `ignore`.
void expect_same_metadata(const gguf::File& got, const gguf::File& ref,
                          const std::set<std::string>& ignore = {}) {
  std::set<std::string> got_keys, ref_keys;
  for (const auto& kv : got.metadata()) {
    if (!ignore.count(kv.key)) got_keys.insert(kv.key);
  }
  for (const auto& kv : ref.metadata()) {
    if (!ignore.count(kv.key)) ref_keys.insert(kv.key);
  }
  EXPECT_EQ(got_keys, ref_keys) << got.path() << " vs " << ref.path();
  for (const auto& kv : ref.metadata()) {
    if (ignore.count(kv.key)) continue;
    const gguf::Value* v = got.find(kv.key);
    if (!v) continue;
    EXPECT_TRUE(same_value(*v, kv.value))
        << "metadata '" << kv.key << "' differs in " << got.path();
  }
}

// Same tensor names, shapes and types; bytes equal wherever the types are equal. Returns the
// number of tensors compared byte for byte.
int expect_same_tensors(const gguf::File& got, const gguf::File& ref, bool all_bytes = true) {
  std::set<std::string> got_names, ref_names;
  for (const auto& t : got.tensors()) got_names.insert(t.name);
  for (const auto& t : ref.tensors()) ref_names.insert(t.name);
  EXPECT_EQ(got_names, ref_names);
  int compared = 0;
  for (const auto& r : ref.tensors()) {
    const gguf::TensorInfo* g = got.find_tensor(r.name);
    if (!g) continue;
    EXPECT_EQ(g->n_dims, r.n_dims) << r.name;
    EXPECT_EQ(g->ne, r.ne) << r.name;
    EXPECT_EQ(tensor_type_name(g->raw_type), tensor_type_name(r.raw_type)) << r.name;
    if (g->raw_type != r.raw_type || !all_bytes) continue;
    EXPECT_EQ(g->n_bytes, r.n_bytes) << r.name;
    if (g->n_bytes != r.n_bytes) continue;
    EXPECT_EQ(std::memcmp(g->data, r.data, r.n_bytes), 0) << "tensor '" << r.name << "' differs";
    ++compared;
  }
  return compared;
}

std::vector<float> dequantized(const gguf::TensorInfo& t) {
  std::vector<float> out(size_t(t.n_elements()));
  const int64_t rows = t.n_elements() / t.ne[0];
  const int64_t rb = type_row_bytes(t.type, t.ne[0]);
  for (int64_t r = 0; r < rows; ++r) {
    kernels::dequantize_row(t.type, t.data + r * rb, out.data() + r * t.ne[0], t.ne[0]);
  }
  return out;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s / double(a.size());
}

// For every quantized tensor: MSE against the f32 weights within 2% of the reference file's.
// Returns the worst ratio.
double expect_mse_within(const gguf::File& got, const gguf::File& ref, const gguf::File& f32) {
  double worst = 0;
  for (const auto& r : ref.tensors()) {
    if (r.type == TensorType::F32) continue;
    const gguf::TensorInfo* g = got.find_tensor(r.name);
    const gguf::TensorInfo* x = f32.find_tensor(r.name);
    if (!g || !x) {
      ADD_FAILURE() << "missing " << r.name;
      continue;
    }
    EXPECT_EQ(tensor_type_name(g->raw_type), tensor_type_name(r.raw_type)) << r.name;
    const std::vector<float> truth = dequantized(*x);
    const double e_got = mse(dequantized(*g), truth);
    const double e_ref = mse(dequantized(r), truth);
    EXPECT_LE(e_got, e_ref * 1.02) << r.name << ": MSE " << e_got << " vs reference " << e_ref;
    worst = std::max(worst, e_got / e_ref);
  }
  return worst;
}

std::string convert_text(const std::string& oracle, const std::string& type) {
  const fs::path out = scratch("tiny-a-" + type + ".gguf");
  ConvertOptions o;
  o.type = type_named(type);
  o.out_path = out.string();
  o.vocab_gguf = models(oracle) + "gemma4-tiny-a-f32.gguf";
  o.name = "gemma4-tiny-a";
  o.n_threads = 2;
  const auto files = convert_hf_to_gguf(models(oracle) + "hf", o);
  EXPECT_EQ(files, std::vector<std::string>{out.string()});
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
  return out.string();
}

// ---------------------------------------------------------------------------------------------

class ConvertHfTwin : public ::testing::TestWithParam<const char*> {};

TEST_P(ConvertHfTwin, TensorsAndMetadataEqualTheReferenceGguf) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string type = GetParam();
  const std::string out = convert_text(oracle, type);
  auto got = gguf::File::open(out);
  auto ref = gguf::File::open(models(oracle) + "gemma4-tiny-a-" + type + ".gguf");
  // gguf-py's q8_0 file has no quantization_version; llama-quantize's files and ours do.
  expect_same_metadata(*got, *ref, {"general.quantization_version"});
  EXPECT_EQ(expect_same_tensors(*got, *ref), 86);
  // And the converted file loads.
  auto model = gemma4::load_model(out);
  EXPECT_EQ(model->config.n_vocab, 4198);
}

INSTANTIATE_TEST_SUITE_P(BitIdentical, ConvertHfTwin,
                         ::testing::Values("f32", "f16", "bf16", "q8_0", "q4_0"));

TEST(ConvertHfTwinKQuants, TypesMatchAndMseWithinTwoPercentOfLlamaQuantize) {
  UG_REQUIRE_ORACLE(oracle);
  auto f32 = gguf::File::open(models(oracle) + "gemma4-tiny-a-f32.gguf");
  for (const char* type : {"q4_k_m", "q6_k"}) {
    SCOPED_TRACE(type);
    const std::string out = convert_text(oracle, type);
    auto got = gguf::File::open(out);
    auto ref = gguf::File::open(models(oracle) + "gemma4-tiny-a-" + type + ".gguf");
    expect_same_metadata(*got, *ref);
    expect_same_tensors(*got, *ref, /*all_bytes=*/false);
    const double worst = expect_mse_within(*got, *ref, *f32);
    std::printf("[ convert %s ] worst per-tensor MSE ratio vs llama-quantize: %.4f\n", type, worst);
  }
}

TEST(Quantize, Q8_0AndQ4_0AreBitIdenticalToTheReferenceFiles) {
  UG_REQUIRE_ORACLE(oracle);
  for (const char* type : {"q8_0", "q4_0"}) {
    SCOPED_TRACE(type);
    const fs::path out = scratch(std::string("quant-") + type + ".gguf");
    quantize_gguf(models(oracle) + "gemma4-tiny-a-f32.gguf", out.string(), type_named(type), 2,
                  false);
    auto got = gguf::File::open(out.string());
    auto ref = gguf::File::open(models(oracle) + "gemma4-tiny-a-" + type + ".gguf");
    EXPECT_EQ(expect_same_tensors(*got, *ref), 86);
    expect_same_metadata(*got, *ref, {"general.quantization_version"});
  }
}

TEST(Quantize, KQuantsWithinTwoPercentOfLlamaQuantize) {
  UG_REQUIRE_ORACLE(oracle);
  auto f32 = gguf::File::open(models(oracle) + "gemma4-tiny-a-f32.gguf");
  for (const char* type : {"q4_k_m", "q6_k"}) {
    SCOPED_TRACE(type);
    const fs::path out = scratch(std::string("quant-") + type + ".gguf");
    quantize_gguf(f32->path(), out.string(), type_named(type), 2, false);
    auto got = gguf::File::open(out.string());
    auto ref = gguf::File::open(models(oracle) + "gemma4-tiny-a-" + type + ".gguf");
    expect_same_metadata(*got, *ref);
    const double worst = expect_mse_within(*got, *ref, *f32);
    std::printf("[ quantize %s ] worst per-tensor MSE ratio vs llama-quantize: %.4f\n", type,
                worst);
  }
  // Q5_K has no reference file: its error must sit between Q4_K's and Q6_K's.
  const fs::path q5 = scratch("quant-q5_k.gguf");
  quantize_gguf(f32->path(), q5.string(), type_named("q5_k"), 2, false);
  auto got = gguf::File::open(q5.string());
  auto q4 = gguf::File::open(scratch("quant-q4_k_m.gguf").string());
  auto q6 = gguf::File::open(scratch("quant-q6_k.gguf").string());
  const char* name = "blk.0.ffn_gate.weight";
  const auto truth = dequantized(*f32->find_tensor(name));
  const double e5 = mse(dequantized(*got->find_tensor(name)), truth);
  EXPECT_EQ(got->find_tensor(name)->type, TensorType::Q5_K);
  EXPECT_LT(e5, mse(dequantized(*q4->find_tensor(name)), truth));
  EXPECT_GT(e5, mse(dequantized(*q6->find_tensor(name)), truth));
}

TEST(Quantize, RefusesToRequantizeUnlessAllowed) {
  UG_REQUIRE_ORACLE(oracle);
  const fs::path out = scratch("requant.gguf");
  try {
    quantize_gguf(models(oracle) + "gemma4-tiny-a-q8_0.gguf", out.string(), type_named("q4_0"), 1,
                  false);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--allow-requantize"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
  quantize_gguf(models(oracle) + "gemma4-tiny-a-q8_0.gguf", out.string(), type_named("q4_0"), 1,
                true);
  EXPECT_EQ(gguf::File::open(out.string())->find_tensor("blk.0.attn_q.weight")->type,
            TensorType::Q4_0);
}

TEST(QuantMix, TypeRules) {
  const OutputType q4km = type_named("q4_k_m");
  EXPECT_EQ(choose_tensor_type(q4km, TensorRole::kVector, 256, 0, 0), TensorType::F32);
  EXPECT_EQ(choose_tensor_type(q4km, TensorRole::kTokenEmbd, 3840, 0, 0), TensorType::Q6_K);
  EXPECT_EQ(choose_tensor_type(q4km, TensorRole::kProjector, 6912, 0, 0), TensorType::Q8_0);
  EXPECT_EQ(choose_tensor_type(q4km, TensorRole::kPositionTable, 3840, 0, 0), TensorType::F32);
  // 12B: 40 attn_v (sliding layers), 48 ffn_down.
  int q6 = 0;
  for (int i = 0; i < 48; ++i) {
    q6 += choose_tensor_type(q4km, TensorRole::kFfnDown, 15360, i, 48) == TensorType::Q6_K;
  }
  EXPECT_EQ(q6, 6 + 6 + 12);  // first/last eighth + every third in between
  // Rows that do not fit the K-quant block fall back to Q8_0.
  EXPECT_EQ(choose_tensor_type(q4km, TensorRole::kMatrix, 640, 0, 0), TensorType::Q8_0);
  EXPECT_EQ(choose_tensor_type(type_named("bf16"), TensorRole::kPositionTable, 3840, 0, 0),
            TensorType::BF16);
  EXPECT_EQ(choose_tensor_type(type_named("q8_0"), TensorRole::kTokenEmbd, 3840, 0, 0),
            TensorType::Q8_0);
  EXPECT_EQ(choose_tensor_type(type_named("q4_0"), TensorRole::kTokenEmbd, 3840, 0, 0),
            TensorType::Q6_K);
  OutputType t;
  EXPECT_FALSE(parse_output_type("q3_k", &t));
}

// ---------------------------------------------------------------------------------------------
// Multimodal projector and drafter: HF folders built from the reference GGUFs by undoing the
// layout transforms (README-multimodal §0), converted back and compared bit for bit.

// Copies a GGUF tensor's fp32 values into an HF tensor, with an optional index permutation:
// hf[i] = gguf[src_index(i)].
void add_f32(SafetensorsWriter& w, const std::string& name, std::vector<int64_t> shape,
             const gguf::TensorInfo& t, std::function<int64_t(int64_t)> src_index = nullptr) {
  ASSERT_EQ(t.type, TensorType::F32) << t.name;
  auto data = std::make_shared<std::vector<float>>(size_t(t.n_elements()));
  std::vector<float> src(size_t(t.n_elements()));
  std::memcpy(src.data(), t.data, t.n_bytes);
  for (int64_t i = 0; i < t.n_elements(); ++i) {
    (*data)[size_t(i)] = src[size_t(src_index ? src_index(i) : i)];
  }
  w.add(name, "F32", shape,
        [data](const SafetensorsWriter::Emit& emit) { emit(data->data(), data->size() * 4); });
}

// HF folder = the tiny-a text twin plus the vision/audio embedders of the reference mmproj.
fs::path make_multimodal_hf(const std::string& oracle) {
  const fs::path dir = scratch("hf-mm");
  fs::create_directories(dir);
  for (const char* f : {"config.json", "generation_config.json"}) {
    fs::copy_file(models(oracle) + "hf/" + f, dir / f, fs::copy_options::overwrite_existing);
  }
  if (!fs::exists(dir / "text.safetensors")) {
    fs::create_symlink(models(oracle) + "hf/model.safetensors", dir / "text.safetensors");
  }
  auto mm = gguf::File::open(oracle + "/mm/model/mmproj-gemma4-tiny-a-f32.gguf");
  auto T = [&](const char* n) -> const gguf::TensorInfo& { return *mm->find_tensor(n); };
  SafetensorsWriter w;
  const std::string v = "model.vision_embedder.";
  // HF column (row*48 + col)*3 + c  <-  GGUF column c*2304 + row*48 + col.
  auto hwc_from_chw = [](int64_t i) {
    const int64_t cols = 6912, r = i / cols, k = i % cols;
    const int64_t pixel = k / 3, c = k % 3;
    return r * cols + c * 2304 + pixel;
  };
  add_f32(w, v + "patch_dense.weight", {256, 6912}, T("v.patch_embd.weight"), hwc_from_chw);
  add_f32(w, v + "patch_ln1.weight", {6912}, T("v.patch_norm.1.weight"), hwc_from_chw);
  add_f32(w, v + "patch_ln1.bias", {6912}, T("v.patch_norm.1.bias"), hwc_from_chw);
  add_f32(w, v + "patch_dense.bias", {256}, T("v.patch_embd.bias"));
  add_f32(w, v + "patch_ln2.weight", {256}, T("v.patch_norm.2.weight"));
  add_f32(w, v + "patch_ln2.bias", {256}, T("v.patch_norm.2.bias"));
  add_f32(w, v + "pos_norm.weight", {256}, T("v.patch_norm.3.weight"));
  add_f32(w, v + "pos_norm.bias", {256}, T("v.patch_norm.3.bias"));
  // HF [1120, 2, 256][p][a]  <-  GGUF {256, 1120, 2} row a*1120 + p.
  add_f32(w, v + "pos_embedding", {1120, 2, 256}, T("v.position_embd.weight"), [](int64_t i) {
    const int64_t row = i / 256, e = i % 256, p = row / 2, a = row % 2;
    return (a * 1120 + p) * 256 + e;
  });
  add_f32(w, "model.embed_vision.embedding_projection.weight", {256, 256},
          T("mm.input_projection.weight"));
  add_f32(w, "model.embed_audio.embedding_projection.weight", {256, 640},
          T("mm.a.input_projection.weight"));
  w.write((dir / "vision.safetensors").string());
  // Sharded index over both files.
  auto text = SafetensorsFile::open((dir / "text.safetensors").string());
  auto vision = SafetensorsFile::open((dir / "vision.safetensors").string());
  json map = json::object();
  for (const auto& t : text->tensors()) map[t.name] = "text.safetensors";
  for (const auto& t : vision->tensors()) map[t.name] = "vision.safetensors";
  std::ofstream(dir / "model.safetensors.index.json") << json{{"weight_map", map}}.dump();
  return dir;
}

// HF folder of the drafter, from the reference gemma4-assistant GGUF.
fs::path make_assistant_hf(const std::string& oracle) {
  const fs::path dir = scratch("hf-assistant");
  fs::create_directories(dir);
  auto a = gguf::File::open(oracle + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf");
  SafetensorsWriter w;
  auto hf_shape = [](const gguf::TensorInfo& t) {
    return std::vector<int64_t>(std::make_reverse_iterator(t.ne.begin() + t.n_dims),
                                std::make_reverse_iterator(t.ne.begin()));
  };
  std::map<std::string, std::string> names = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"post_attention_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
      {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
      {"layer_output_scale.weight", "layer_scalar"}};
  for (const auto& t : a->tensors()) {
    std::string hf;
    if (t.name == "token_embd.weight") hf = "model.embed_tokens.weight";
    if (t.name == "output_norm.weight") hf = "model.norm.weight";
    if (t.name == "nextn.pre_projection.weight") hf = "pre_projection.weight";
    if (t.name == "nextn.post_projection.weight") hf = "post_projection.weight";
    if (t.name.rfind("blk.", 0) == 0) {
      const size_t dot = t.name.find('.', 4);
      hf = "model.layers." + t.name.substr(4, dot - 4) + "." + names.at(t.name.substr(dot + 1));
    }
    if (hf.empty()) continue;  // rope_freqs: derived from rope_parameters
    add_f32(w, hf, hf_shape(t), t);
  }
  w.write((dir / "model.safetensors").string());
  json tc = {{"hidden_size", 128},
             {"intermediate_size", 512},
             {"num_hidden_layers", 4},
             {"num_attention_heads", 4},
             {"num_key_value_heads", 2},
             {"num_global_key_value_heads", 1},
             {"head_dim", 64},
             {"global_head_dim", 128},
             {"layer_types",
              {"sliding_attention", "sliding_attention", "sliding_attention", "full_attention"}},
             {"sliding_window", 16},
             {"max_position_embeddings", 262144},
             {"rms_norm_eps", 1e-6},
             {"final_logit_softcapping", 30.0},
             {"num_kv_shared_layers", 4},
             {"vocab_size", 4198},
             {"rope_parameters",
              {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
               {"full_attention",
                {{"rope_type", "proportional"},
                 {"partial_rotary_factor", 0.25},
                 {"rope_theta", 1000000.0}}}}}};
  std::ofstream(dir / "config.json") << json{
      {"architectures", {"Gemma4UnifiedAssistantForCausalLM"}},
      {"model_type", "gemma4_unified_assistant"},
      {"backbone_hidden_size", 256},
      {"use_ordered_embeddings", false},
      {"text_config", tc}}.dump(2);
  return dir;
}

TEST(ConvertMultimodal, MmprojEqualsTheReferenceProjector) {
  UG_REQUIRE_ORACLE(oracle);
  const fs::path hf = make_multimodal_hf(oracle);
  ConvertOptions o;
  o.type = type_named("f32");
  o.out_path = scratch("mm-text.gguf").string();
  o.vocab_gguf = models(oracle) + "gemma4-tiny-a-f32.gguf";
  o.name = "gemma4-tiny-a";
  const auto files = convert_hf_to_gguf(hf.string(), o);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[1], scratch("mmproj-mm-text.gguf").string());
  auto ref = gguf::File::open(oracle + "/mm/model/mmproj-gemma4-tiny-a-f32.gguf");
  auto got = gguf::File::open(files[1]);
  expect_same_metadata(*got, *ref);
  EXPECT_EQ(expect_same_tensors(*got, *ref), 11);
  // The text file is the plain text model.
  auto text = gguf::File::open(files[0]);
  expect_same_tensors(*text, *gguf::File::open(models(oracle) + "gemma4-tiny-a-f32.gguf"));
}

// The processor's image budget (HF max_soft_tokens) becomes the projector's default, in the HF
// folder and, through convert, in the mmproj as clip.vision.max_soft_tokens.
TEST(ConvertMultimodal, ImageBudgetOfTheProcessorConfigIsKept) {
  UG_REQUIRE_ORACLE(oracle);
  const fs::path hf = make_multimodal_hf(oracle);
  const int n_embd = 256;
  EXPECT_EQ(gemma4::load_projector(hf.string(), n_embd)->default_image_tokens, 0);
  std::ofstream(hf / "processor_config.json") << R"({"image_processor": {"max_soft_tokens": 140}})";
  EXPECT_EQ(gemma4::load_projector(hf.string(), n_embd)->default_image_tokens, 140);
  ConvertOptions o;
  o.type = type_named("f32");
  o.out_path = scratch("mm-budget.gguf").string();
  o.vocab_gguf = models(oracle) + "gemma4-tiny-a-f32.gguf";
  const auto files = convert_hf_to_gguf(hf.string(), o);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(gguf::File::open(files[1])->opt_int("clip.vision.max_soft_tokens"), 140);
  EXPECT_EQ(gemma4::load_projector(files[1], n_embd)->default_image_tokens, 140);
  // preprocessor_config.json, top level, is read too; a value outside 1..1120 is refused.
  fs::remove(hf / "processor_config.json");
  std::ofstream(hf / "preprocessor_config.json") << R"({"max_soft_tokens": 5000})";
  try {
    gemma4::load_projector(hf.string(), n_embd);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("preprocessor_config.json: field 'max_soft_tokens'"),
              std::string::npos)
        << e.what();
  }
  fs::remove(hf / "preprocessor_config.json");
}

TEST(ConvertAssistant, EqualsTheReferenceDrafterGguf) {
  UG_REQUIRE_ORACLE(oracle);
  const fs::path hf = make_assistant_hf(oracle);
  ConvertOptions o;
  o.type = type_named("f32");
  o.out_path = scratch("assistant.gguf").string();
  o.vocab_gguf = models(oracle) + "gemma4-tiny-a-f32.gguf";
  o.name = "gemma4-tiny-a-assistant";
  convert_hf_to_gguf(hf.string(), o);
  auto ref = gguf::File::open(oracle + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf");
  auto got = gguf::File::open(o.out_path);
  expect_same_metadata(*got, *ref);
  EXPECT_EQ(expect_same_tensors(*got, *ref), int(ref->tensors().size()));
}

TEST(ConvertBundle, OneFileLoadsAsTextProjectorAndDrafter) {
  UG_REQUIRE_ORACLE(oracle);
  const fs::path mm = make_multimodal_hf(oracle);
  const fs::path asst = make_assistant_hf(oracle);
  ConvertOptions o;
  o.type = type_named("f32");
  o.out_path = scratch("bundle.gguf").string();
  o.vocab_gguf = models(oracle) + "gemma4-tiny-a-f32.gguf";
  o.name = "gemma4-tiny-a";
  o.bundle = true;
  o.assistant_dir = asst.string();
  const auto files = convert_hf_to_gguf(mm.string(), o);
  ASSERT_EQ(files, std::vector<std::string>{o.out_path});
  auto bundle = gguf::File::open(o.out_path);
  EXPECT_EQ(bundle->get_string("general.architecture"), "gemma4");
  // Every tensor of the three reference files is in the bundle, byte for byte (drafter under mtp.).
  auto check = [&](const std::string& ref_path, const std::string& prefix) -> size_t {
    auto ref = gguf::File::open(ref_path);
    for (const auto& r : ref->tensors()) {
      const gguf::TensorInfo* g = bundle->find_tensor(prefix + r.name);
      EXPECT_NE(g, nullptr) << prefix + r.name;
      if (!g) continue;
      EXPECT_EQ(g->n_bytes, r.n_bytes) << r.name;
      if (g->n_bytes != r.n_bytes) continue;
      EXPECT_EQ(std::memcmp(g->data, r.data, r.n_bytes), 0) << prefix + r.name;
    }
    return ref->tensors().size();
  };
  const size_t n = check(models(oracle) + "gemma4-tiny-a-f32.gguf", "") +
                   check(oracle + "/mm/model/mmproj-gemma4-tiny-a-f32.gguf", "") +
                   check(oracle + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf", "mtp.");
  EXPECT_EQ(bundle->tensors().size(), n);
  EXPECT_TRUE(bundle->has("tokenizer.chat_template"));
  EXPECT_TRUE(bundle->has("clip.vision.projector_type"));
  EXPECT_TRUE(bundle->has("gemma4-assistant.embedding_length_out"));
  // The loaders take their parts from the one file.
  auto model = gemma4::load_model(o.out_path);
  auto projector = gemma4::load_projector(o.out_path, model->config.n_embd);
  EXPECT_TRUE(projector->vision.has_value());
  EXPECT_TRUE(projector->audio.has_value());
  auto drafter = gemma4::load_drafter(o.out_path);
  EXPECT_EQ(drafter->config.n_layer, 4);
  EXPECT_EQ(drafter->n_embd_target, 256);
  gemma4::check_drafter_compatible(*drafter, *model);
  // The same drafter as the reference file, tensor for tensor.
  auto ref_drafter = gemma4::load_drafter(oracle + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf");
  EXPECT_EQ(
      std::memcmp(drafter->pre_projection.data, ref_drafter->pre_projection.data,
                  size_t(ref_drafter->pre_projection.rows * ref_drafter->pre_projection.row_bytes)),
      0);
  EXPECT_EQ(drafter->layers[3].rope_inv_freq, ref_drafter->layers[3].rope_inv_freq);
}

TEST(ConvertSynth, TinyHfFolderConvertsAndLoads) {
  const fs::path dir = scratch("synth-hf");
  gemma4::SynthOptions so;
  so.shape = "tiny";
  so.type = TensorType::BF16;
  gemma4::write_synthetic_hf(so, dir.string());
  ConvertOptions o;
  o.type = type_named("q8_0");
  o.out_path = scratch("synth.gguf").string();
  const auto files = convert_hf_to_gguf(dir.string(), o);
  ASSERT_EQ(files.size(), 2u);  // text + mmproj
  auto model = gemma4::load_model(files[0]);
  EXPECT_EQ(model->config.n_layer, 6);
  EXPECT_EQ(model->token_embd.type, TensorType::Q8_0);
  auto projector = gemma4::load_projector(files[1], model->config.n_embd);
  EXPECT_TRUE(projector->vision.has_value());
  // The HF folder itself loads with the same weights (bf16 -> q8_0 only rounds).
  auto hf = gemma4::load_model(dir.string());
  EXPECT_EQ(hf->config.n_vocab, model->config.n_vocab);
  EXPECT_EQ(hf->layers[0].attn_norm, model->layers[0].attn_norm);
}

// ---------------------------------------------------------------------------------------------
// Bad input: one-line error naming the problem, nothing under the output name.

class ConvertBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    oracle_ = test::oracle_dir();
    if (oracle_.empty()) GTEST_SKIP() << "oracle pack not found";
    dir_ = scratch("bad-" +
                   std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const char* f : {"config.json", "generation_config.json", "model.safetensors"}) {
      fs::copy_file(models(oracle_) + "hf/" + f, dir_ / f);
      fs::permissions(dir_ / f, fs::perms::owner_write, fs::perm_options::add);
    }
    out_ = (dir_ / "out.gguf").string();
  }
  std::string convert_error() {
    ConvertOptions o;
    o.type = type_named("q8_0");
    o.out_path = out_;
    o.vocab_gguf = models(oracle_) + "gemma4-tiny-a-f32.gguf";
    try {
      convert_hf_to_gguf(dir_.string(), o);
    } catch (const Error& e) {
      EXPECT_FALSE(fs::exists(out_));
      EXPECT_FALSE(fs::exists(out_ + ".tmp"));
      EXPECT_FALSE(fs::exists(dir_ / "mmproj-out.gguf"));
      const std::string msg = e.what();
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
      return msg;
    }
    ADD_FAILURE() << "conversion of a broken folder succeeded";
    return "";
  }
  void edit_config(const std::function<void(json&)>& edit) {
    json c = json::parse(std::ifstream(dir_ / "config.json"));
    edit(c);
    std::ofstream(dir_ / "config.json") << c.dump();
  }
  // Rewrites model.safetensors with `edit` applied to its header JSON, keeping the data.
  void edit_header(const std::function<void(json&)>& edit) {
    std::ifstream in(dir_ / "model.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    uint64_t len = 0;
    std::memcpy(&len, bytes.data(), 8);
    json h = json::parse(bytes.substr(8, len));
    edit(h);
    std::string text = h.dump();
    while (text.size() < len) text.push_back(' ');
    ASSERT_EQ(text.size(), len) << "edited header must keep its length";
    std::memcpy(bytes.data() + 8, text.data(), len);
    std::ofstream(dir_ / "model.safetensors", std::ios::binary | std::ios::trunc) << bytes;
  }
  std::string oracle_;
  fs::path dir_;
  std::string out_;
};

TEST_F(ConvertBadInput, MissingConfigKey) {
  edit_config([](json& c) { c["text_config"].erase("hidden_size"); });
  EXPECT_NE(convert_error().find("'hidden_size': missing"), std::string::npos);
}

TEST_F(ConvertBadInput, UnknownArchitecture) {
  edit_config([](json& c) { c["architectures"] = {"LlamaForCausalLM"}; });
  EXPECT_NE(convert_error().find("LlamaForCausalLM"), std::string::npos);
}

TEST_F(ConvertBadInput, MissingArchitectures) {
  edit_config([](json& c) { c.erase("architectures"); });
  EXPECT_NE(convert_error().find("'architectures': missing"), std::string::npos);
}

TEST_F(ConvertBadInput, DtypeMismatch) {
  // The header claims F16 for an F32 tensor: the byte range no longer matches the shape.
  edit_header([](json& h) { h["model.language_model.norm.weight"]["dtype"] = "F16"; });
  const std::string msg = convert_error();
  EXPECT_NE(msg.find("model.language_model.norm.weight"), std::string::npos) << msg;
}

TEST_F(ConvertBadInput, UnsupportedDtype) {
  edit_header([](json& h) { h["model.language_model.layers.0.layer_scalar"]["dtype"] = "I32"; });
  const std::string msg = convert_error();
  EXPECT_NE(msg.find("layer_scalar"), std::string::npos) << msg;
}

TEST_F(ConvertBadInput, TruncatedSafetensors) {
  fs::resize_file(dir_ / "model.safetensors", fs::file_size(dir_ / "model.safetensors") - 1000);
  const std::string msg = convert_error();
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST_F(ConvertBadInput, HeaderClaimingTerabytes) {
  std::fstream f(dir_ / "model.safetensors", std::ios::binary | std::ios::in | std::ios::out);
  const uint64_t huge = uint64_t(5) << 40;
  f.write(reinterpret_cast<const char*>(&huge), 8);
  f.close();
  const std::string msg = convert_error();
  EXPECT_NE(msg.find("header length"), std::string::npos) << msg;
}

TEST_F(ConvertBadInput, UnknownTensor) {
  // A tensor the layout does not know (e.g. a newer variant) is not silently dropped.
  SafetensorsWriter w;
  std::vector<float> v(4, 1.0f);
  w.add("model.language_model.mystery.weight", "F32", {4},
        [&](const SafetensorsWriter::Emit& emit) { emit(v.data(), 16); });
  w.write((dir_ / "extra.safetensors").string());
  auto text = SafetensorsFile::open((dir_ / "model.safetensors").string());
  json map = json::object();
  for (const auto& t : text->tensors()) map[t.name] = "model.safetensors";
  map["model.language_model.mystery.weight"] = "extra.safetensors";
  std::ofstream(dir_ / "model.safetensors.index.json") << json{{"weight_map", map}}.dump();
  EXPECT_NE(convert_error().find("mystery"), std::string::npos);
}

TEST_F(ConvertBadInput, NoTokenizer) {
  ConvertOptions o;
  o.type = type_named("f32");
  o.out_path = out_;
  try {
    convert_hf_to_gguf(dir_.string(), o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out_));
}

}  // namespace
}  // namespace ug
