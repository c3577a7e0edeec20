// Audio decoding for the Gemma 4 audio path (spec §3.1): any format libsndfile reads (WAV, FLAC,
// OGG/Vorbis/Opus, MP3), downmixed to mono by averaging, resampled to 16 kHz with soxr (very high
// quality, linear phase), cut into 640-sample frames. Knows nothing of the model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ug::media {

constexpr int kAudioSampleRate = 16000;
constexpr int kAudioFrame = 640;  // samples per audio soft token (40 ms)

struct AudioLimits {
  double max_seconds = 3600;  // decoding stops with an error beyond this (before resampling)
};

struct Audio {
  int source_rate = 0;
  int source_channels = 0;
  std::vector<float> samples;  // mono, 16 kHz, nominally in [-1, 1]
};

// Decodes and converts to mono 16 kHz. `name` is used in error messages. Throws ug::Error.
Audio decode_audio(const uint8_t* data, size_t size, const std::string& name,
                   const AudioLimits& limits = {});
Audio load_audio(const std::string& path, const AudioLimits& limits = {});

// Mono float samples at `rate` -> 16 kHz (copy when rate is already 16 kHz).
std::vector<float> resample_to_16k(const std::vector<float>& samples, int rate);

// Number of soft tokens for n samples: ceil(n / 640).
inline int audio_tokens(size_t n_samples) {
  return int((n_samples + kAudioFrame - 1) / kAudioFrame);
}
// [audio_tokens(n)][640], last frame zero-padded.
std::vector<float> audio_frames(const std::vector<float>& samples);

}  // namespace ug::media
