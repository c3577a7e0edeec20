// libFuzzer target for the image decoders and the vision preprocessing that follows them.
#include <cstddef>
#include <cstdint>

#include "media/image.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ug::media::ImageLimits limits;
  limits.max_pixels = 1 << 20;  // keep each run small; the limit check itself is under test
  try {
    const ug::media::Image img = ug::media::decode_image(data, size, "fuzz", limits);
    if (img.width * img.height <= 4096) ug::media::preprocess_image(img, 70);
  } catch (const ug::Error&) {
  }
  return 0;
}
