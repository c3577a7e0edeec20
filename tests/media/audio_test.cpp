// Audio decoding, downmix and resampling against the oracle (README-multimodal.md §3, §6), and bad
// input handling.
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "media/audio.h"
#include "test_support.h"
#include "util/error.h"

namespace ug::media {
namespace {

std::vector<uint8_t> wav_pcm16(int rate, int channels, const std::vector<int16_t>& samples) {
  std::vector<uint8_t> b;
  auto put32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) b.push_back(uint8_t(v >> (8 * i)));
  };
  auto put16 = [&](uint16_t v) {
    b.push_back(uint8_t(v));
    b.push_back(uint8_t(v >> 8));
  };
  const uint32_t data_bytes = uint32_t(samples.size() * 2);
  b.insert(b.end(), {'R', 'I', 'F', 'F'});
  put32(36 + data_bytes);
  b.insert(b.end(), {'W', 'A', 'V', 'E', 'f', 'm', 't', ' '});
  put32(16);
  put16(1);
  put16(uint16_t(channels));
  put32(uint32_t(rate));
  put32(uint32_t(rate * channels * 2));
  put16(uint16_t(channels * 2));
  put16(16);
  b.insert(b.end(), {'d', 'a', 't', 'a'});
  put32(data_bytes);
  for (int16_t s : samples) put16(uint16_t(s));
  return b;
}

TEST(Audio, FramesAreZeroPaddedTo640) {
  std::vector<float> s(641, 1.0f);
  EXPECT_EQ(audio_tokens(641), 2);
  EXPECT_EQ(audio_tokens(640), 1);
  const auto f = audio_frames(s);
  ASSERT_EQ(f.size(), 1280u);
  EXPECT_EQ(f[640], 1.0f);
  EXPECT_EQ(f[641], 0.0f);
}

TEST(Audio, Pcm16IsScaledBy32768AndStereoIsAveraged) {
  const auto mono = wav_pcm16(16000, 1, {0, 16384, -32768, 1});
  const Audio a = decode_audio(mono.data(), mono.size(), "m.wav");
  ASSERT_EQ(a.samples.size(), 4u);
  EXPECT_EQ(a.samples[1], 0.5f);
  EXPECT_EQ(a.samples[2], -1.0f);
  EXPECT_EQ(a.samples[3], 1.0f / 32768);
  const auto stereo = wav_pcm16(16000, 2, {16384, 0, -16384, -16384});
  const Audio b = decode_audio(stereo.data(), stereo.size(), "s.wav");
  ASSERT_EQ(b.samples.size(), 2u);
  EXPECT_EQ(b.samples[0], 0.25f);
  EXPECT_EQ(b.samples[1], -0.5f);
}

TEST(Audio, MatchesOracleFiles) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string dir = oracle + "/audio/";
  std::ifstream in(dir + "audio.json");
  const auto j = nlohmann::json::parse(in);
  for (const auto& [name, c] : j["files"].items()) {
    SCOPED_TRACE(name);
    const Audio a = load_audio(dir + c["file"].get<std::string>());
    const int64_t want = c["n_samples_16k"].get<int64_t>();
    const std::string kind = c["reference"];
    if (kind == "pcm") {
      ASSERT_EQ(int64_t(a.samples.size()), want);
      const auto first8 = c["ref_first8"].get<std::vector<double>>();
      for (size_t i = 0; i < first8.size(); ++i) EXPECT_NEAR(a.samples[i], first8[i], 1e-9);
    } else {
      EXPECT_LE(std::llabs(int64_t(a.samples.size()) - want), 1);
    }
    EXPECT_EQ(audio_tokens(a.samples.size()), c["n_tokens"].get<int>());
    double sum_sq = 0;
    for (float v : a.samples) sum_sq += double(v) * v;
    EXPECT_NEAR(sum_sq, c["ref_stats"]["sum_sq"].get<double>(),
                1e-2 * c["ref_stats"]["sum_sq"].get<double>());
    if (c.contains("ref_samples_f32")) {
      std::ifstream rf(dir + c["ref_samples_f32"].get<std::string>(), std::ios::binary);
      std::vector<float> ref(static_cast<size_t>(want));
      rf.read(reinterpret_cast<char*>(ref.data()), std::streamsize(ref.size() * 4));
      double err2 = 0, sig2 = 0, max_abs = 0;
      for (size_t i = 0; i < ref.size() && i < a.samples.size(); ++i) {
        const double e = double(a.samples[i]) - ref[i];
        err2 += e * e;
        sig2 += double(ref[i]) * ref[i];
        max_abs = std::max(max_abs, std::fabs(e));
      }
      EXPECT_LE(std::sqrt(err2 / sig2), 3e-3);
      EXPECT_LE(max_abs, 5e-3);
    }
  }
}

void expect_error(const std::vector<uint8_t>& bytes, const std::string& needle) {
  try {
    decode_audio(bytes.data(), bytes.size(), "bad.snd");
    ADD_FAILURE() << "no error for " << needle;
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bad.snd"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(Audio, BadInputGivesOneLineErrors) {
  expect_error({}, "empty");
  expect_error(wav_pcm16(16000, 1, {}), "no samples");
  const std::string text = "This is not an MP3 file, just some text pretending to be one.\n";
  expect_error(std::vector<uint8_t>(text.begin(), text.end()), "not a readable audio file");
  auto wav = wav_pcm16(16000, 1, std::vector<int16_t>(1000, 5));
  wav.resize(20);
  expect_error(wav, "bad.snd");
}

TEST(Audio, OneSampleIsOneToken) {
  const auto one = wav_pcm16(16000, 1, {1234});
  const Audio a = decode_audio(one.data(), one.size(), "one.wav");
  ASSERT_EQ(a.samples.size(), 1u);
  EXPECT_EQ(audio_tokens(a.samples.size()), 1);
  // At another rate a single sample may resample to nothing: that must be an error, not a crash.
  const auto one44 = wav_pcm16(44100, 1, {1234});
  try {
    const Audio b = decode_audio(one44.data(), one44.size(), "one44.wav");
    EXPECT_LE(b.samples.size(), 2u);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("one44.wav"), std::string::npos);
  }
}

TEST(Audio, LimitIsEnforcedWhileDecoding) {
  const auto wav = wav_pcm16(16000, 1, std::vector<int16_t>(16000 * 3, 7));
  AudioLimits limits;
  limits.max_seconds = 1;
  EXPECT_THROW(decode_audio(wav.data(), wav.size(), "long.wav", limits), Error);
}

}  // namespace
}  // namespace ug::media
