// Image decoding and the Gemma 4 vision pre-processing (spec §2.1, §12.1-12.2): decode to 8-bit RGB
// (alpha composited over white, grayscale replicated), resize to the token budget with torch's
// float bicubic + antialias, split into 48x48x3 patches. Knows nothing of the model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ug::media {

// 8-bit RGB, row-major HWC.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgb;  // height * width * 3
};

struct ImageLimits {
  // Checked against the header before any pixel buffer is allocated.
  int64_t max_pixels = int64_t(1) << 26;  // 67 M pixels (a 12 MP photo fits 5x over)
};

// Decodes PNG, JPEG (EXIF orientation applied), GIF (first frame), WebP, BMP or PPM/PGM, picked by
// content. `name` is used in error messages. Throws ug::Error with one line on bad input.
Image decode_image(const uint8_t* data, size_t size, const std::string& name,
                   const ImageLimits& limits = {});
Image load_image(const std::string& path, const ImageLimits& limits = {});
// What PIL.ImageOps.exif_transpose does for EXIF orientation 1..8 (6 = rotate 90 clockwise,
// 3 = 180, 8 = 90 counter-clockwise); other values return the image unchanged.
Image apply_exif_orientation(const Image& image, int orientation);

constexpr int kPatchSize = 48;
constexpr int kPatchValues = kPatchSize * kPatchSize * 3;  // 6912
constexpr int kImageBudgets[] = {70, 140, 280, 560, 1120};

struct ResizeTarget {
  int height = 0;
  int width = 0;
  bool edge_case = false;  // one side rounded to 0 and was set to 48
  int rows() const { return height / kPatchSize; }
  int cols() const { return width / kPatchSize; }
  int tokens() const { return rows() * cols(); }
};

// The size rule of spec §2.1 for `budget` soft tokens (any positive budget is accepted).
ResizeTarget target_size(int height, int width, int budget);

// torch.nn.functional.interpolate(bicubic, align_corners=False, antialias=True) on 0..255 floats,
// then clamp, round half to even, back to uint8 (spec §12.1). Returns `image` unchanged when the
// size already matches.
Image resize_bicubic_aa(const Image& image, int height, int width);

struct Patches {
  int rows = 0;
  int cols = 0;
  std::vector<float>
      values;  // [rows*cols][6912], (row, col, channel) with channel fastest, x 1/255
  std::vector<int32_t> pos_x;  // column of each patch
  std::vector<int32_t> pos_y;  // row of each patch
  int count() const { return rows * cols; }
};

// Splits an image whose sides are multiples of 48 into row-major patches.
Patches extract_patches(const Image& image);

// target_size + resize_bicubic_aa + extract_patches.
Patches preprocess_image(const Image& image, int budget);

}  // namespace ug::media
