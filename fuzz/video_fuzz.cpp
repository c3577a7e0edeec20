// libFuzzer target for the video decode path (in-memory AVIO, demuxing, frame sampling, decoding,
// RGB conversion and the audio track), with small limits so each run stays short.
#include <cstddef>
#include <cstdint>

#include "media/video.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ug::media::VideoLimits limits;
  limits.max_pixels = 1 << 16;
  limits.max_seconds = 600;
  limits.max_stream_frames = 5000;
  limits.max_audio_seconds = 60;
  ug::media::VideoOptions options;
  options.max_frames = 4;
  try {
    const ug::media::Video v = ug::media::decode_video(data, size, "fuzz", options, limits);
    for (const auto& f : v.frames) {
      if (f.image.width * f.image.height <= 4096) ug::media::preprocess_image(f.image, 70);
    }
  } catch (const ug::Error&) {
  }
  return 0;
}
