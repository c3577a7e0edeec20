// Vision pre-processing (spec §2.1 with the §12.1 refinement): the budget size rule, torch's
// separable antialiased bicubic on floats, and 48x48 patch extraction.
#include <algorithm>
#include <cfenv>
#include <cmath>

#include "media/image.h"
#include "util/error.h"

namespace ug::media {

ResizeTarget target_size(int height, int width, int budget) {
  if (height <= 0 || width <= 0 || budget <= 0) {
    throw Error("image resize: invalid size " + std::to_string(height) + "x" +
                std::to_string(width) + " or budget " + std::to_string(budget));
  }
  const double f = std::sqrt(double(budget) * kPatchSize * kPatchSize / (double(height) * width));
  int64_t h = int64_t(std::floor(f * height / kPatchSize)) * kPatchSize;
  int64_t w = int64_t(std::floor(f * width / kPatchSize)) * kPatchSize;
  ResizeTarget t;
  if (h == 0 || w == 0) {
    t.edge_case = true;
    const int64_t ratio = height > width ? height / width : width / height;
    const int64_t long_side = std::min(ratio * kPatchSize, int64_t(budget) * kPatchSize);
    if (h == 0) {
      h = kPatchSize;
      w = long_side;
    } else {
      w = kPatchSize;
      h = long_side;
    }
  }
  t.height = int(h);
  t.width = int(w);
  return t;
}

namespace {

// Keys' cubic with a = -0.5, the kernel torch uses for antialiased bicubic (as Pillow does).
float cubic_aa(float x) {
  constexpr float a = -0.5f;
  x = std::fabs(x);
  if (x < 1.0f) return ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
  if (x < 2.0f) return (((x - 5.0f) * x + 8.0f) * x - 4.0f) * a;
  return 0.0f;
}

struct Taps {
  int support_size = 0;
  std::vector<int> start;      // first input index per output index
  std::vector<int> count;      // taps used per output index
  std::vector<float> weights;  // [out][support_size], normalised
};

// Mirrors torch's _compute_indices_weights_aa (float arithmetic, align_corners=False).
Taps compute_taps(int in_size, int out_size) {
  const float scale = float(in_size) / float(out_size);
  const float support = scale >= 1.0f ? 2.0f * scale : 2.0f;
  const float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
  Taps t;
  t.support_size = int(std::ceil(support)) * 2 + 1;
  t.start.resize(size_t(out_size));
  t.count.resize(size_t(out_size));
  t.weights.assign(size_t(out_size) * t.support_size, 0.0f);
  for (int i = 0; i < out_size; ++i) {
    const float center = scale * (float(i) + 0.5f);
    const int xmin = std::max(int(center - support + 0.5f), 0);
    const int xsize = std::min(int(center + support + 0.5f), in_size) - xmin;
    const int n = std::clamp(xsize, 0, t.support_size);
    float* w = &t.weights[size_t(i) * t.support_size];
    float total = 0.0f;
    for (int j = 0; j < n; ++j) {
      w[j] = cubic_aa((float(j + xmin) - center + 0.5f) * invscale);
      total += w[j];
    }
    if (total != 0.0f) {
      for (int j = 0; j < n; ++j) w[j] /= total;
    }
    t.start[size_t(i)] = xmin;
    t.count[size_t(i)] = n;
  }
  return t;
}

}  // namespace

Image resize_bicubic_aa(const Image& image, int height, int width) {
  if (height <= 0 || width <= 0 || image.width <= 0 || image.height <= 0) {
    throw Error("image resize: invalid size");
  }
  if (height == image.height && width == image.width) return image;
  const int H = image.height, W = image.width;
  // Float planes 0..255; torch resizes the width (contiguous dim) first, then the height, and skips
  // a pass whose size does not change.
  std::vector<float> src(image.rgb.begin(), image.rgb.end());
  std::vector<float> horiz;
  if (width != W) {
    const Taps t = compute_taps(W, width);
    horiz.assign(size_t(H) * width * 3, 0.0f);
    for (int y = 0; y < H; ++y) {
      const float* row = &src[size_t(y) * W * 3];
      float* out = &horiz[size_t(y) * width * 3];
      for (int x = 0; x < width; ++x) {
        const float* w = &t.weights[size_t(x) * t.support_size];
        const int s = t.start[size_t(x)], n = t.count[size_t(x)];
        for (int c = 0; c < 3; ++c) {
          float acc = 0.0f;
          for (int j = 0; j < n; ++j) acc += row[(s + j) * 3 + c] * w[j];
          out[x * 3 + c] = acc;
        }
      }
    }
  } else {
    horiz = std::move(src);
  }
  std::vector<float> result;
  if (height != H) {
    const Taps t = compute_taps(H, height);
    result.assign(size_t(height) * width * 3, 0.0f);
    const size_t stride = size_t(width) * 3;
    for (int y = 0; y < height; ++y) {
      const float* w = &t.weights[size_t(y) * t.support_size];
      const int s = t.start[size_t(y)], n = t.count[size_t(y)];
      float* out = &result[size_t(y) * stride];
      for (size_t k = 0; k < stride; ++k) {
        float acc = 0.0f;
        for (int j = 0; j < n; ++j) acc += horiz[size_t(s + j) * stride + k] * w[j];
        out[k] = acc;
      }
    }
  } else {
    result = std::move(horiz);
  }
  Image out{width, height, std::vector<uint8_t>(result.size())};
  const int old_mode = std::fegetround();
  std::fesetround(FE_TONEAREST);
  for (size_t i = 0; i < result.size(); ++i) {
    out.rgb[i] = uint8_t(std::nearbyint(std::clamp(result[i], 0.0f, 255.0f)));
  }
  std::fesetround(old_mode);
  return out;
}

Patches extract_patches(const Image& image) {
  if (image.width <= 0 || image.height <= 0 || image.width % kPatchSize != 0 ||
      image.height % kPatchSize != 0) {
    throw Error("image patches: size " + std::to_string(image.height) + "x" +
                std::to_string(image.width) + " is not a multiple of 48");
  }
  Patches p;
  p.rows = image.height / kPatchSize;
  p.cols = image.width / kPatchSize;
  p.values.resize(size_t(p.count()) * kPatchValues);
  const float inv255 = 1.0f / 255.0f;  // HF rescale: u8 * float32(1/255)
  for (int r = 0; r < p.rows; ++r) {
    for (int c = 0; c < p.cols; ++c) {
      float* dst = &p.values[(size_t(r) * p.cols + c) * kPatchValues];
      for (int y = 0; y < kPatchSize; ++y) {
        const uint8_t* src =
            &image.rgb[((size_t(r) * kPatchSize + y) * image.width + size_t(c) * kPatchSize) * 3];
        for (int k = 0; k < kPatchSize * 3; ++k)
          dst[y * kPatchSize * 3 + k] = float(src[k]) * inv255;
      }
      p.pos_x.push_back(c);
      p.pos_y.push_back(r);
    }
  }
  return p;
}

Patches preprocess_image(const Image& image, int budget) {
  const ResizeTarget t = target_size(image.height, image.width, budget);
  return extract_patches(resize_bicubic_aa(image, t.height, t.width));
}

}  // namespace ug::media
