// Multimodal projector loading (mmproj GGUF, spec §7.3) and the vision/audio embedders against the
// oracle's float64 reference (README-multimodal.md §2, §3).
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/gemma4/projector.h"
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

}  // namespace
}  // namespace ug::gemma4
