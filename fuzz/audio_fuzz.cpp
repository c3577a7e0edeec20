// libFuzzer target for audio decoding (libsndfile), downmix and resampling.
#include <cstddef>
#include <cstdint>

#include "media/audio.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ug::media::AudioLimits limits;
  limits.max_seconds = 5;
  try {
    const ug::media::Audio a = ug::media::decode_audio(data, size, "fuzz", limits);
    (void)ug::media::audio_frames(a.samples);
  } catch (const ug::Error&) {
  }
  return 0;
}
