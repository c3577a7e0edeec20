// Multimodal projector loading (mmproj GGUF, spec §7.3) and the vision/audio embedders against the
// oracle's float64 reference (README-multimodal.md §2, §3).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "model/gemma4/bundle.h"
#include "model/gemma4/model.h"
#include "model/gemma4/projector.h"
#include "model/gemma4/synth.h"
#include "test_support.h"
#include "util/error.h"

namespace ug::gemma4 {
namespace {

std::vector<float> read_f32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> v(b.size() / 4);
  std::memcpy(v.data(), b.data(), v.size() * 4);
  return v;
}

TEST(Projector, LoadsTheOracleMmproj) {
  UG_REQUIRE_ORACLE(oracle);
  const auto p = load_projector(oracle + "/mm/model/mmproj-gemma4-tiny-a-f32.gguf", 256);
  ASSERT_TRUE(p->vision.has_value());
  ASSERT_TRUE(p->audio.has_value());
  EXPECT_TRUE(p->vision->chw_columns);
  EXPECT_EQ(p->vision->n_mm, 256);
  EXPECT_EQ(p->vision->n_pos, 1120);
  EXPECT_EQ(p->audio->n_out, 256);
  // The projection must produce the text model's width.
  EXPECT_THROW(load_projector(oracle + "/mm/model/mmproj-gemma4-tiny-a-f32.gguf", 512), Error);
  // A text-only GGUF has no projector tensors.
  EXPECT_THROW(load_projector(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf", 256), Error);
}

TEST(Projector, VisionEmbedderMatchesReferenceOnOraclePatches) {
  UG_REQUIRE_ORACLE(oracle);
  const auto p = load_projector(oracle + "/mm/model/mmproj-gemma4-tiny-a-f32.gguf", 256);
  ThreadPool pool(2);
  for (const auto& [name, rows, cols] :
       {std::tuple<std::string, int, int>{"grace_hopper", 9, 7}, {"chelsea", 6, 10}}) {
    SCOPED_TRACE(name);
    const auto patches = read_f32(oracle + "/vision/embedder/" + name + "_b70_patches_f32.bin");
    const auto ref = read_f32(oracle + "/vision/embedder/" + name + "_b70_embd_numpy_f32.bin");
    const int n = rows * cols;
    ASSERT_EQ(patches.size(), size_t(n) * 6912);
    std::vector<int32_t> x, y;
    for (int i = 0; i < n; ++i) x.push_back(i % cols), y.push_back(i / cols);
    const auto out = embed_patches(*p->vision, patches.data(), x.data(), y.data(), n, pool);
    ASSERT_EQ(out.size(), ref.size());
    double max_abs = 0, mean_abs = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      max_abs = std::max(max_abs, std::fabs(double(out[i]) - ref[i]));
      mean_abs += std::fabs(double(out[i]) - ref[i]);
    }
    EXPECT_LE(max_abs, 5e-4);
    EXPECT_LE(mean_abs / double(out.size()), 1e-5);
  }
}

TEST(Projector, VisionPositionOutsideTableIsAnError) {
  UG_REQUIRE_ORACLE(oracle);
  const auto p = load_projector(oracle + "/mm/model/mmproj-gemma4-tiny-a-f32.gguf", 256);
  ThreadPool pool(1);
  std::vector<float> patch(6912, 0.5f);
  const int32_t x = 1120, y = 0;
  EXPECT_THROW(embed_patches(*p->vision, patch.data(), &x, &y, 1, pool), Error);
}

// Writes the oracle's GGUF projector as an HF safetensors folder (spec §7.1), either naming
// variant: patch columns and patch_ln1 back from CHW to HWC order, the position table from
// {n_mm, n_pos, 2} to [n_pos, 2, n_mm]; the linear weights keep their [out, in] layout.
void write_hf_projector(const gguf::File& g, const std::string& dir, bool renamed) {
  struct Out {
    std::string name;
    std::vector<int64_t> shape;
    std::vector<float> data;
  };
  auto f32 = [&](const char* name) {
    const gguf::TensorInfo* t = g.find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    EXPECT_EQ(t->type, TensorType::F32) << name;
    std::vector<float> v(size_t(t->n_elements()));
    std::memcpy(v.data(), t->data, v.size() * 4);
    return v;
  };
  auto hwc_from_chw = [](const std::vector<float>& chw, size_t rows) {
    std::vector<float> hwc(chw.size());
    for (size_t r = 0; r < rows; ++r) {
      for (int c = 0; c < 3; ++c) {
        for (int i = 0; i < 48 * 48; ++i) {
          hwc[r * 6912 + size_t(i) * 3 + c] = chw[r * 6912 + size_t(c) * 2304 + i];
        }
      }
    }
    return hwc;
  };
  const int64_t n_mm = g.find_tensor("v.patch_embd.weight")->ne[1];
  const int64_t n_out = g.find_tensor("mm.input_projection.weight")->ne[1];
  const int64_t n_pos = g.find_tensor("v.position_embd.weight")->ne[1];
  const std::string v = renamed ? "model.embed_vision." : "model.vision_embedder.";
  std::vector<Out> outs;
  outs.push_back({v + "patch_ln1.weight", {6912}, hwc_from_chw(f32("v.patch_norm.1.weight"), 1)});
  outs.push_back({v + "patch_ln1.bias", {6912}, hwc_from_chw(f32("v.patch_norm.1.bias"), 1)});
  outs.push_back({v + "patch_dense.weight",
                  {n_mm, 6912},
                  hwc_from_chw(f32("v.patch_embd.weight"), size_t(n_mm))});
  outs.push_back({v + "patch_dense.bias", {n_mm}, f32("v.patch_embd.bias")});
  outs.push_back({v + "patch_ln2.weight", {n_mm}, f32("v.patch_norm.2.weight")});
  outs.push_back({v + "patch_ln2.bias", {n_mm}, f32("v.patch_norm.2.bias")});
  const std::vector<float> pos = f32("v.position_embd.weight");  // [2][n_pos][n_mm]
  std::vector<float> hf_pos(pos.size());                         // [n_pos][2][n_mm]
  for (int64_t axis = 0; axis < 2; ++axis) {
    for (int64_t p = 0; p < n_pos; ++p) {
      std::memcpy(&hf_pos[size_t((p * 2 + axis) * n_mm)], &pos[size_t((axis * n_pos + p) * n_mm)],
                  size_t(n_mm) * 4);
    }
  }
  outs.push_back({v + "pos_embedding", {n_pos, 2, n_mm}, hf_pos});
  outs.push_back({v + "pos_norm.weight", {n_mm}, f32("v.patch_norm.3.weight")});
  outs.push_back({v + "pos_norm.bias", {n_mm}, f32("v.patch_norm.3.bias")});
  outs.push_back({renamed ? "model.embed_vision.multimodal_embedder.embedding_projection.weight"
                          : "model.embed_vision.embedding_projection.weight",
                  {n_out, n_mm},
                  f32("mm.input_projection.weight")});
  outs.push_back({"model.embed_audio.embedding_projection.weight",
                  {n_out, 640},
                  f32("mm.a.input_projection.weight")});
  nlohmann::ordered_json header;
  size_t offset = 0;
  for (const Out& o : outs) {
    header[o.name] = {{"dtype", "F32"},
                      {"shape", o.shape},
                      {"data_offsets", {offset, offset + o.data.size() * 4}}};
    offset += o.data.size() * 4;
  }
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  std::filesystem::create_directories(dir);
  std::ofstream out(dir + "/model.safetensors", std::ios::binary);
  const uint64_t n = h.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << h;
  for (const Out& o : outs) {
    out.write(reinterpret_cast<const char*>(o.data.data()), std::streamsize(o.data.size() * 4));
  }
}

TEST(Projector, HfLayoutBothNamingVariantsGiveTheGgufEmbeddings) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string mmproj = oracle + "/mm/model/mmproj-gemma4-tiny-a-f32.gguf";
  const auto ref = load_projector(mmproj, 256);
  const auto g = gguf::File::open(mmproj);
  ThreadPool pool(2);
  // A 3x4 grid of patches with varied content, and 5 audio frames.
  const int n = 12;
  std::vector<float> patches(size_t(n) * 6912);
  uint32_t x = 7;
  for (float& v : patches) {
    x = x * 1664525u + 1013904223u;
    v = float(x >> 8) / float(1 << 24);
  }
  std::vector<int32_t> px, py;
  for (int i = 0; i < n; ++i) px.push_back(i % 4), py.push_back(i / 4);
  std::vector<float> frames(5 * 640);
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = std::sin(0.01f * float(i));
  const auto want_v = embed_patches(*ref->vision, patches.data(), px.data(), py.data(), n, pool);
  const auto want_a = embed_audio_frames(*ref->audio, frames.data(), 5, pool);
  for (bool renamed : {false, true}) {
    SCOPED_TRACE(renamed ? "model.embed_vision.* names" : "model.vision_embedder.* names");
    const std::string dir = (std::filesystem::temp_directory_path() /
                             ("ug_hf_projector_" + std::to_string(int(renamed))))
                                .string();
    write_hf_projector(*g, dir, renamed);
    EXPECT_TRUE(has_projector_tensors(dir));
    const auto hf = load_projector(dir, 256);
    ASSERT_TRUE(hf->vision && hf->audio);
    EXPECT_FALSE(hf->vision->chw_columns);
    const auto got_v = embed_patches(*hf->vision, patches.data(), px.data(), py.data(), n, pool);
    const auto got_a = embed_audio_frames(*hf->audio, frames.data(), 5, pool);
    ASSERT_EQ(got_v.size(), want_v.size());
    for (size_t i = 0; i < got_v.size(); ++i) ASSERT_NEAR(got_v[i], want_v[i], 1e-5f) << i;
    EXPECT_EQ(got_a, want_a);
    std::filesystem::remove_all(dir);
  }
}

TEST(Projector, SynthWritesProjectorAndBundle) {
  const auto dir = std::filesystem::temp_directory_path() / "ug_synth_projector_test";
  std::filesystem::create_directories(dir);
  SynthOptions o;
  o.type = TensorType::F16;
  o.content = SynthOptions::Content::kProjector;
  write_synthetic_model(o, (dir / "mmproj.gguf").string());
  const auto p = load_projector((dir / "mmproj.gguf").string(), 256);
  ASSERT_TRUE(p->vision && p->audio);
  EXPECT_EQ(p->vision->n_mm, 256);
  EXPECT_EQ(p->vision->n_pos, 1120);
  EXPECT_EQ(p->vision->dense.type, TensorType::F16);
  EXPECT_EQ(gguf::File::open((dir / "mmproj.gguf").string())
                ->opt_string("general.architecture")
                .value_or(""),
            "clip");
  // The bundle: a text model that also carries the projector tensors.
  o.content = SynthOptions::Content::kBundle;
  write_synthetic_model(o, (dir / "bundle.gguf").string());
  EXPECT_TRUE(has_projector_tensors((dir / "bundle.gguf").string()));
  const auto model = load_model((dir / "bundle.gguf").string());
  EXPECT_EQ(model->config.n_embd, 256);
  const auto b = load_projector((dir / "bundle.gguf").string(), model->config.n_embd);
  EXPECT_TRUE(b->vision && b->audio);
  ThreadPool pool(1);
  std::vector<float> patch(6912, 0.25f);
  const int32_t zero = 0;
  const auto e = embed_patches(*b->vision, patch.data(), &zero, &zero, 1, pool);
  ASSERT_EQ(e.size(), 256u);
  for (float v : e) ASSERT_TRUE(std::isfinite(v));
  // A plain text model is not a bundle.
  o.content = SynthOptions::Content::kText;
  write_synthetic_model(o, (dir / "text.gguf").string());
  EXPECT_FALSE(has_projector_tensors((dir / "text.gguf").string()));
  // `unigemma bundle`: text model + mmproj in one file, same embeddings as the mmproj alone.
  const std::string joined = (dir / "joined.gguf").string();
  write_bundle((dir / "text.gguf").string(), (dir / "mmproj.gguf").string(), joined);
  EXPECT_TRUE(has_projector_tensors(joined));
  EXPECT_EQ(load_model(joined)->config.n_layer,
            load_model((dir / "text.gguf").string())->config.n_layer);
  const auto jp = load_projector(joined, 256);
  EXPECT_EQ(embed_patches(*jp->vision, patch.data(), &zero, &zero, 1, pool),
            embed_patches(*p->vision, patch.data(), &zero, &zero, 1, pool));
  // Wrong inputs: a projector as the text model, a bundle as the text model.
  EXPECT_THROW(write_bundle((dir / "mmproj.gguf").string(), (dir / "mmproj.gguf").string(),
                            (dir / "x.gguf").string()),
               Error);
  EXPECT_THROW(write_bundle(joined, (dir / "mmproj.gguf").string(), (dir / "x.gguf").string()),
               Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "x.gguf"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ug::gemma4
