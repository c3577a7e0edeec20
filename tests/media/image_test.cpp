// Image decoding and vision pre-processing against the oracle (README-multimodal.md §1, §6) plus
// bad-input handling.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "media/image.h"
#include "test_support.h"
#include "util/error.h"

namespace ug::media {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
}

TEST(ImagePreprocess, TargetSizeMatchesSpecTable) {
  // Spec §2.2 table (H x W -> H' x W').
  struct Case {
    int h, w, budget, th, tw;
  } cases[] = {
      {1024, 1024, 70, 384, 384}, {1024, 1024, 280, 768, 768},  {1024, 1024, 1120, 1584, 1584},
      {768, 1024, 70, 336, 432},  {768, 1024, 280, 672, 912},   {768, 1024, 1120, 1344, 1824},
      {1080, 1920, 70, 288, 528}, {1080, 1920, 280, 576, 1056}, {1080, 1920, 1120, 1200, 2112},
      {100, 3000, 70, 48, 2160},  {100, 3000, 280, 144, 4368},  {100, 3000, 1120, 288, 8784}};
  for (const Case& c : cases) {
    const ResizeTarget t = target_size(c.h, c.w, c.budget);
    EXPECT_EQ(t.height, c.th) << c.h << "x" << c.w << " budget " << c.budget;
    EXPECT_EQ(t.width, c.tw) << c.h << "x" << c.w << " budget " << c.budget;
  }
}

TEST(ImagePreprocess, MatchesOracleForEveryImageAndBudget) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string dir = oracle + "/vision/";
  const auto j = read_json(dir + "vision_preprocess.json");
  int checked = 0;
  for (const auto& [name, info] : j["images"].items()) {
    SCOPED_TRACE(name);
    const Image img = load_image(dir + info["file"].get<std::string>());
    ASSERT_EQ(img.height, info["height"].get<int>());
    ASSERT_EQ(img.width, info["width"].get<int>());
    uint64_t sum = 0;
    for (uint8_t v : img.rgb) sum += v;
    EXPECT_EQ(sum, info["decoded_rgb_u8"]["sum"].get<uint64_t>()) << "decoded pixels differ";
    for (const auto& [budget_s, b] : info["budgets"].items()) {
      SCOPED_TRACE("budget " + budget_s);
      const ResizeTarget t = target_size(img.height, img.width, std::stoi(budget_s));
      ASSERT_EQ(t.height, b["target_hw"][0].get<int>());
      ASSERT_EQ(t.width, b["target_hw"][1].get<int>());
      ASSERT_EQ(t.tokens(), b["n_tokens"].get<int>());
      const Image resized = resize_bicubic_aa(img, t.height, t.width);
      const auto& ref = b["hf_float"];
      uint64_t u8_sum = 0;
      for (uint8_t v : resized.rgb) u8_sum += v;
      const double ref_u8 = ref["u8_sum"].get<double>();
      // Rounding ties may differ by one level on <= 0.1% of values.
      EXPECT_LE(std::fabs(double(u8_sum) - ref_u8), 1e-3 * double(resized.rgb.size()));
      const Patches p = extract_patches(resized);
      ASSERT_EQ(p.count(), b["n_tokens"].get<int>());
      double s = 0;
      for (float v : p.values) s += v;
      EXPECT_NEAR(s, ref["sum"].get<double>(), 1e-5 * ref["sum"].get<double>());
      const auto first16 = ref["patch0_first16_hwc"].get<std::vector<float>>();
      int first16_diff = 0;
      for (size_t i = 0; i < first16.size(); ++i) first16_diff += p.values[i] != first16[i];
      EXPECT_LE(first16_diff, 1) << "patch 0 order/values";
      EXPECT_EQ(p.pos_x.back(), ref["patch_last_pos_xy"][0].get<int>());
      EXPECT_EQ(p.pos_y.back(), ref["patch_last_pos_xy"][1].get<int>());
      ++checked;
    }
  }
  EXPECT_EQ(checked, 27);
}

TEST(ImagePreprocess, Budget70PixelsMatchOraclePngs) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string dir = oracle + "/vision/";
  const auto j = read_json(dir + "vision_preprocess.json");
  for (const auto& [name, info] : j["images"].items()) {
    SCOPED_TRACE(name);
    const auto& b = info["budgets"]["70"];
    const Image img = load_image(dir + info["file"].get<std::string>());
    const Image mine = resize_bicubic_aa(img, b["target_hw"][0], b["target_hw"][1]);
    const Image ref = load_image(dir + b["hf_float"]["png_u8"].get<std::string>());
    ASSERT_EQ(mine.rgb.size(), ref.rgb.size());
    size_t differing = 0;
    int max_diff = 0;
    for (size_t i = 0; i < ref.rgb.size(); ++i) {
      const int d = std::abs(int(mine.rgb[i]) - int(ref.rgb[i]));
      differing += d != 0;
      max_diff = std::max(max_diff, d);
    }
    EXPECT_LE(max_diff, 1);
    EXPECT_LE(double(differing), 1e-3 * double(ref.rgb.size()));
  }
}

TEST(ImagePreprocess, PatchesMatchOracleFloatFiles) {
  UG_REQUIRE_ORACLE(oracle);
  // The embedder-input patch vectors of grace_hopper (63 x 6912, HF order).
  const std::string dir = oracle + "/vision/";
  const Image img = load_image(dir + "resized/grace_hopper_b70_432x336.png");
  const Patches p = preprocess_image(img, 70);
  ASSERT_EQ(p.rows, 9);
  ASSERT_EQ(p.cols, 7);
  const auto ref = read_bytes(dir + "embedder/grace_hopper_b70_patches_f32.bin");
  ASSERT_EQ(ref.size(), p.values.size() * 4);
  EXPECT_EQ(std::memcmp(ref.data(), p.values.data(), ref.size()), 0);
}

// ---- bad input ----

std::vector<uint8_t> png_header(uint32_t w, uint32_t h) {
  // Signature + IHDR with a valid CRC is not needed for the size check of every decoder, but
  // libpng verifies it: build it properly.
  std::vector<uint8_t> b = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                            0,    0,   0,   13,  'I',  'H',  'D',  'R'};
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
  };
  be32(w);
  be32(h);
  b.insert(b.end(), {8, 2, 0, 0, 0});
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 12; i < b.size(); ++i) {
    crc ^= b[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
  }
  be32(~crc);
  return b;
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  try {
    decode_image(bytes.data(), bytes.size(), "bad.img");
    ADD_FAILURE() << "no error for " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.img"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(ImageDecode, HugePngHeaderRefusedBeforeAllocating) {
  expect_error(png_header(30000, 30000), "exceeds the limit");
}

TEST(ImageDecode, TruncatedFilesGiveErrors) {
  UG_REQUIRE_ORACLE(oracle);
  auto png = read_bytes(oracle + "/vision/images/astronaut.png");
  png.resize(png.size() / 2);
  expect_error(png, "PNG");
  auto jpg = read_bytes(oracle + "/vision/images/rocket.jpg");
  jpg.resize(600);
  expect_error(jpg, "JPEG");
  expect_error({}, "empty");
  expect_error({'h', 'e', 'l', 'l', 'o'}, "not a supported image");
  expect_error({'B', 'M', 0, 0}, "BMP");
  expect_error({'P', '6', '\n', '9', '9', '9', '9', '9', ' ', '9', '9', '9', '9', '9', ' ', '2',
                '5', '5', '\n'},
               "exceeds the limit");
  expect_error({'P', '6', '\n', '2', ' ', '2', ' ', '2', '5', '5', '\n', 1, 2, 3}, "truncated");
  expect_error({'G', 'I', 'F', '8', '9', 'a'}, "GIF");
  expect_error({'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'E', 'B', 'P'}, "WebP");
}

TEST(ImageDecode, OnePixelImageIsUpscaledToTheBudget) {
  // 1x1 PPM: a valid image, filled to the budget like any other (768x768 at 280).
  const std::vector<uint8_t> ppm = {'P', '6', ' ', '1',  ' ', '1', ' ',
                                    '2', '5', '5', '\n', 10,  20,  30};
  const Image img = decode_image(ppm.data(), ppm.size(), "one.ppm");
  ASSERT_EQ(img.width, 1);
  const Patches p = preprocess_image(img, 280);
  EXPECT_EQ(p.count(), 256);
  EXPECT_FLOAT_EQ(p.values[0], 10.0f / 255.0f);
  EXPECT_FLOAT_EQ(p.values.back(), float(30) * (1.0f / 255.0f));
}

TEST(ImageDecode, BmpAndPpmAgreeWithPng) {
  UG_REQUIRE_ORACLE(oracle);
  const Image ref = load_image(oracle + "/vision/images/shuttle_tiny.png");
  // Write the same pixels as PPM and as a 24-bit bottom-up BMP.
  std::string ppm =
      "P6\n# comment\n" + std::to_string(ref.width) + " " + std::to_string(ref.height) + "\n255\n";
  std::vector<uint8_t> pb(ppm.begin(), ppm.end());
  pb.insert(pb.end(), ref.rgb.begin(), ref.rgb.end());
  EXPECT_EQ(decode_image(pb.data(), pb.size(), "x.ppm").rgb, ref.rgb);

  const uint32_t stride = (uint32_t(ref.width) * 3 + 3) & ~3u;
  std::vector<uint8_t> bmp(54 + size_t(stride) * ref.height, 0);
  auto le32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) bmp[at + i] = uint8_t(v >> (8 * i));
  };
  bmp[0] = 'B', bmp[1] = 'M';
  le32(2, uint32_t(bmp.size()));
  le32(10, 54);
  le32(14, 40);
  le32(18, uint32_t(ref.width));
  le32(22, uint32_t(ref.height));
  bmp[26] = 1, bmp[28] = 24;
  for (int y = 0; y < ref.height; ++y) {
    for (int x = 0; x < ref.width; ++x) {
      for (int c = 0; c < 3; ++c) {
        bmp[54 + size_t(ref.height - 1 - y) * stride + size_t(x) * 3 + (2 - c)] =
            ref.rgb[(size_t(y) * ref.width + x) * 3 + c];
      }
    }
  }
  EXPECT_EQ(decode_image(bmp.data(), bmp.size(), "x.bmp").rgb, ref.rgb);
}

}  // namespace
}  // namespace ug::media
