// Audio decoding through libsndfile's virtual I/O (so memory buffers and files share one path) and
// resampling with soxr at very high quality (the class of SoX `rate -v`, which the oracle used).
#include "media/audio.h"

#include <sndfile.h>
#include <soxr.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>

#include "util/error.h"

namespace ug::media {

namespace {

struct MemoryFile {
  const uint8_t* data;
  sf_count_t size;
  sf_count_t pos;
};

sf_count_t vio_length(void* p) {
  return static_cast<MemoryFile*>(p)->size;
}
sf_count_t vio_seek(sf_count_t offset, int whence, void* p) {
  auto* f = static_cast<MemoryFile*>(p);
  sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? f->pos : f->size;
  const sf_count_t target = base + offset;
  if (target < 0) return -1;
  f->pos = std::min(target, f->size);
  return f->pos;
}
sf_count_t vio_read(void* dst, sf_count_t n, void* p) {
  auto* f = static_cast<MemoryFile*>(p);
  const sf_count_t k = std::max<sf_count_t>(0, std::min(n, f->size - f->pos));
  std::memcpy(dst, f->data + f->pos, size_t(k));
  f->pos += k;
  return k;
}
sf_count_t vio_write(const void*, sf_count_t, void*) {
  return 0;
}
sf_count_t vio_tell(void* p) {
  return static_cast<MemoryFile*>(p)->pos;
}

}  // namespace

std::vector<float> resample_to_16k(const std::vector<float>& samples, int rate) {
  if (rate == kAudioSampleRate || samples.empty()) return samples;
  if (rate <= 0) throw Error("audio resample: invalid sample rate " + std::to_string(rate));
  const double ratio = double(kAudioSampleRate) / rate;
  const size_t out_capacity = size_t(double(samples.size()) * ratio) + 64;
  std::vector<float> out(out_capacity);
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t q = soxr_quality_spec(SOXR_VHQ, 0);  // linear phase by default
  size_t done = 0;
  const soxr_error_t err =
      soxr_oneshot(double(rate), double(kAudioSampleRate), 1, samples.data(), samples.size(),
                   nullptr, out.data(), out.size(), &done, &io, &q, nullptr);
  if (err) throw Error(std::string("audio resample: soxr: ") + err);
  out.resize(done);
  return out;
}

std::vector<float> audio_frames(const std::vector<float>& samples) {
  std::vector<float> frames(size_t(audio_tokens(samples.size())) * kAudioFrame, 0.0f);
  std::copy(samples.begin(), samples.end(), frames.begin());
  return frames;
}

Audio decode_audio(const uint8_t* data, size_t size, const std::string& name,
                   const AudioLimits& limits) {
  if (size == 0) throw Error(name + ": empty audio file");
  MemoryFile mem{data, sf_count_t(size), 0};
  SF_VIRTUAL_IO vio{vio_length, vio_seek, vio_read, vio_write, vio_tell};
  SF_INFO info;
  std::memset(&info, 0, sizeof(info));
  SNDFILE* sf = sf_open_virtual(&vio, SFM_READ, &info, &mem);
  if (!sf) {
    throw Error(name +
                ": not a readable audio file (WAV, FLAC, OGG, MP3): " + sf_strerror(nullptr));
  }
  struct Guard {
    SNDFILE* s;
    ~Guard() { sf_close(s); }
  } guard{sf};
  if (info.channels <= 0 || info.channels > 64 || info.samplerate <= 0 ||
      info.samplerate > 1'000'000) {
    throw Error(name + ": unsupported audio layout (" + std::to_string(info.channels) +
                " channels, " + std::to_string(info.samplerate) + " Hz)");
  }
  sf_command(sf, SFC_SET_NORM_FLOAT, nullptr, SF_TRUE);  // int16 -> x / 32768
  const int ch = info.channels;
  const double max_frames = limits.max_seconds * info.samplerate;
  Audio audio;
  audio.source_rate = info.samplerate;
  audio.source_channels = ch;
  std::vector<float> mono;
  // The header's frame count may be absent or wrong (MP3, streams): read in chunks instead of
  // trusting it for the allocation.
  std::vector<float> chunk(size_t(4096) * ch);
  const float inv_ch = 1.0f / float(ch);
  for (;;) {
    const sf_count_t got = sf_readf_float(sf, chunk.data(), 4096);
    if (got <= 0) break;
    if (double(mono.size() + size_t(got)) > max_frames) {
      throw Error(name + ": audio is longer than the limit of " +
                  std::to_string(int(limits.max_seconds)) + " s (--audio-max SECONDS raises it)");
    }
    for (sf_count_t i = 0; i < got; ++i) {
      if (ch == 1) {
        mono.push_back(chunk[size_t(i)]);
      } else if (ch == 2) {
        mono.push_back((chunk[size_t(i) * 2] + chunk[size_t(i) * 2 + 1]) * 0.5f);
      } else {
        float s = 0;
        for (int c = 0; c < ch; ++c) s += chunk[size_t(i) * ch + c];
        mono.push_back(s * inv_ch);
      }
    }
  }
  if (sf_error(sf) != SF_ERR_NO_ERROR) {
    throw Error(name + ": audio decoding failed: " + sf_strerror(sf));
  }
  if (mono.empty()) throw Error(name + ": audio file holds no samples");
  audio.samples = resample_to_16k(mono, info.samplerate);
  if (audio.samples.empty()) throw Error(name + ": audio too short to resample to 16 kHz");
  return audio;
}

Audio load_audio(const std::string& path, const AudioLimits& limits) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open audio file");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  return decode_audio(bytes.data(), bytes.size(), path, limits);
}

}  // namespace ug::media
