// Video decoding (spec §2.5, §12.7): frame sampling and timestamps on videos written here with
// FFmpeg's encoders (frame index encoded as colour), the audio track, the oracle's clip, and bad
// input.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "media/video.h"
#include "test_support.h"
#include "util/error.h"
#include "video_maker.h"

namespace ug::media {
namespace {

namespace fs = std::filesystem;

struct VideoFiles : ::testing::Test {
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("ug_video_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
           "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string make(const std::string& file, const test::TestVideo& spec) {
    const std::string path = (dir / file).string();
    test::write_test_video(path, spec);
    return path;
  }
  static std::vector<uint8_t> bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  }
  fs::path dir;
};

// Which frame of the test video an image shows (its mean red level is 6 * index).
int frame_index_of(const Image& img) {
  double r = 0, g = 0;
  const size_t n = size_t(img.width) * img.height;
  for (size_t i = 0; i < n; ++i) {
    r += img.rgb[i * 3];
    g += img.rgb[i * 3 + 1];
  }
  r /= double(n);
  g /= double(n);
  EXPECT_NEAR(r + g, 255.0, 6.0);  // the colour is the test pattern, not garbage
  return int(std::lround(r / 6.0));
}

TEST(VideoSampling, ReferenceRuleAndTimestamps) {
  EXPECT_EQ(sample_frame_indices(8, 32), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(sample_frame_indices(8, 4), (std::vector<int64_t>{0, 2, 4, 6}));
  EXPECT_EQ(sample_frame_indices(10, 3), (std::vector<int64_t>{0, 3, 6}));
  const auto many = sample_frame_indices(40, 32);
  ASSERT_EQ(many.size(), 32u);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(many[size_t(i)], int64_t(i * 1.25)) << i;
  EXPECT_TRUE(sample_frame_indices(0, 32).empty());
  EXPECT_EQ(format_timestamp(0), "00:00");
  EXPECT_EQ(format_timestamp(7.99), "00:07");
  EXPECT_EQ(format_timestamp(65.0), "01:05");
  EXPECT_EQ(format_timestamp(6000.5), "100:00");
}

TEST(VideoSampling, FramesPerSecondRule) {
  // n = int(total / video_fps * fps), clamped to 1..max_frames; unknown rates fall back to max.
  EXPECT_EQ(sample_frame_count(8, 2.0, 1.0, 32), 4);
  EXPECT_EQ(sample_frame_count(300, 30.0, 2.0, 32), 20);
  EXPECT_EQ(sample_frame_count(3000, 30.0, 2.0, 32), 32);
  EXPECT_EQ(sample_frame_count(10, 30.0, 0.5, 32), 1);  // 0.16 frames rounds up to one
  EXPECT_EQ(sample_frame_count(10, 0.0, 1.0, 32), 32);
  EXPECT_EQ(sample_frame_count(10, 25.0, 0.0, 7), 7);
  EXPECT_EQ(sample_frame_count(0, 25.0, 1.0, 7), 7);
}

TEST_F(VideoFiles, AviMpeg4SamplesUniformFramesWithTheirTimes) {
  test::TestVideo spec;  // 40 frames at 4 fps, MPEG-4 part 2 in AVI
  const std::string path = make("clip.avi", spec);
  const Video v = load_video(path);
  EXPECT_EQ(v.total_frames, 40);
  EXPECT_NEAR(v.duration, 10.0, 1e-6);
  EXPECT_NEAR(v.fps, 4.0, 1e-9);
  EXPECT_FALSE(v.has_audio);
  ASSERT_EQ(v.frames.size(), 32u);
  for (size_t i = 0; i < 32; ++i) {
    const int64_t want = int64_t(double(i) * 1.25);
    EXPECT_EQ(v.frames[i].index, want);
    EXPECT_EQ(frame_index_of(v.frames[i].image), want) << "sample " << i;
    EXPECT_NEAR(v.frames[i].seconds, double(want) / 4.0, 1e-9);
    EXPECT_EQ(v.frames[i].image.width, 96);
    EXPECT_EQ(v.frames[i].image.height, 64);
  }
  EXPECT_EQ(format_timestamp(v.frames.back().seconds), "00:09");
  // The same bytes from memory give the same frames.
  const auto b = bytes(path);
  const Video m = decode_video(b.data(), b.size(), "clip.avi");
  ASSERT_EQ(m.frames.size(), 32u);
  EXPECT_EQ(m.frames[17].image.rgb, v.frames[17].image.rgb);
}

TEST_F(VideoFiles, Mp4WithBFramesAndAacTrack) {
  test::TestVideo spec;
  spec.container = "mp4";
  spec.frames = 42;
  spec.fps = 6;
  spec.b_frames = 2;
  spec.gop = 12;
  spec.audio_codec = AV_CODEC_ID_AAC;
  const std::string path = make("clip.mp4", spec);
  VideoOptions o;
  o.max_frames = 6;
  const Video v = load_video(path, o);
  EXPECT_EQ(v.total_frames, 42);
  ASSERT_EQ(v.frames.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(frame_index_of(v.frames[i].image), int(i) * 7) << i;
    EXPECT_NEAR(v.frames[i].seconds, double(i) * 7 / 6.0, 1e-6);
  }
  ASSERT_TRUE(v.has_audio);
  EXPECT_EQ(v.audio.source_rate, 44100);
  EXPECT_EQ(v.audio.source_channels, 2);
  // 7 s of a 0.5-amplitude sine at 16 kHz (AAC adds up to a frame of priming/padding).
  EXPECT_NEAR(double(v.audio.samples.size()), 7.0 * 16000, 2048 * 16000 / 44100.0 + 2);
  double sq = 0;
  const size_t a = 16000, b = 6 * 16000;  // skip the codec's edges
  for (size_t i = a; i < b; ++i) sq += double(v.audio.samples[i]) * v.audio.samples[i];
  EXPECT_NEAR(std::sqrt(sq / double(b - a)), 0.5 / std::sqrt(2.0), 0.01);
  o.audio = false;
  EXPECT_FALSE(load_video(path, o).has_audio);
}

TEST_F(VideoFiles, MatroskaMjpegWithPcmAudio) {
  test::TestVideo spec;
  spec.container = "matroska";
  spec.video_codec = AV_CODEC_ID_MJPEG;
  spec.frames = 9;
  spec.fps = 3;
  spec.audio_codec = AV_CODEC_ID_PCM_S16LE;
  spec.audio_rate = 22050;
  spec.audio_channels = 1;
  const std::string path = make("clip.mkv", spec);
  const Video v = load_video(path);  // fewer frames than 32: every frame once
  ASSERT_EQ(v.frames.size(), 9u);
  for (size_t i = 0; i < 9; ++i) EXPECT_EQ(frame_index_of(v.frames[i].image), int(i));
  ASSERT_TRUE(v.has_audio);
  EXPECT_NEAR(double(v.audio.samples.size()), 3.0 * 16000, 1024 * 16000 / 22050.0 + 2);
  EXPECT_NEAR(v.audio.samples[8009], 0.5 * std::sin(2 * M_PI * 440 * 8009 / 16000.0), 0.01);
}

TEST_F(VideoFiles, DisplayRotationIsApplied) {
  test::TestVideo spec;
  spec.container = "mp4";
  spec.frames = 4;
  spec.rotation_cw = 90;
  const Video v = load_video(make("rot.mp4", spec));
  ASSERT_EQ(v.frames.size(), 4u);
  EXPECT_EQ(v.frames[0].image.width, 64);
  EXPECT_EQ(v.frames[0].image.height, 96);
}

TEST_F(VideoFiles, AudioOnlyFileHasNoVideoStream) {
  test::TestVideo spec;
  spec.container = "matroska";
  spec.with_video = false;
  spec.audio_codec = AV_CODEC_ID_PCM_S16LE;
  const std::string path = make("sound.mkv", spec);
  try {
    load_video(path);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no video stream"), std::string::npos) << e.what();
  }
}

TEST_F(VideoFiles, TruncatedFilesAreErrors) {
  for (const char* container : {"avi", "mp4", "matroska"}) {
    test::TestVideo spec;
    spec.container = container;
    spec.frames = 40;
    spec.width = 160;
    spec.height = 120;
    const auto full = bytes(make(std::string("t.") + container, spec));
    for (double keep : {0.02, 0.5}) {
      const size_t n = size_t(double(full.size()) * keep);
      EXPECT_THROW(decode_video(full.data(), n, "cut"), Error) << container << " " << keep;
    }
    // Cut inside the trailing index: the frames may all be there. Then they must be right.
    const size_t n = size_t(double(full.size()) * 0.8);
    try {
      const Video v = decode_video(full.data(), n, "cut");
      for (const VideoFrame& f : v.frames) {
        EXPECT_EQ(frame_index_of(f.image), f.index) << container;
      }
    } catch (const Error&) {
    }
  }
}

TEST_F(VideoFiles, CorruptBytesNeverCrash) {
  test::TestVideo spec;
  spec.container = "matroska";
  spec.audio_codec = AV_CODEC_ID_PCM_S16LE;
  auto b = bytes(make("c.mkv", spec));
  uint32_t x = 12345;
  for (int round = 0; round < 20; ++round) {
    auto damaged = b;
    for (int k = 0; k < 8; ++k) {
      x = x * 1664525u + 1013904223u;
      damaged[x % damaged.size()] ^= uint8_t(x >> 24);
    }
    try {
      const Video v = decode_video(damaged.data(), damaged.size(), "damaged");
      EXPECT_FALSE(v.frames.empty());
    } catch (const Error&) {
    }
  }
}

TEST(VideoBadInput, NotVideosAreClearErrors) {
  auto expect_error = [](const std::vector<uint8_t>& b, const char* what) {
    try {
      decode_video(b.data(), b.size(), "x");
      ADD_FAILURE() << what << ": expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("x: ", 0), 0u) << e.what();
    }
  };
  expect_error({}, "empty");
  const std::string text = "this is plain text, certainly not a video file\n";
  expect_error(std::vector<uint8_t>(text.begin(), text.end()), "text");
  // A PNG is not a (one-frame) video.
  const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D',
                         'R',  0,   0,   0,   1,    0,    0,    0,    1, 8, 2, 0,  0,   0,   0};
  expect_error(std::vector<uint8_t>(std::begin(png), std::end(png)), "png");
  EXPECT_THROW(load_video("/nonexistent/clip.mp4"), Error);
}

TEST_F(VideoFiles, LimitsAreEnforced) {
  test::TestVideo spec;
  const std::string path = make("l.avi", spec);
  VideoLimits pixels;
  pixels.max_pixels = 96 * 64 - 1;
  EXPECT_THROW(load_video(path, {}, pixels), Error);
  VideoLimits seconds;
  seconds.max_seconds = 5;
  EXPECT_THROW(load_video(path, {}, seconds), Error);
  VideoLimits frames;
  frames.max_stream_frames = 39;
  EXPECT_THROW(load_video(path, {}, frames), Error);
  VideoOptions bad;
  bad.max_frames = 33;
  EXPECT_THROW(load_video(path, bad), Error);
}

TEST(VideoOracle, PhotosClipLayout) {
  UG_REQUIRE_ORACLE(oracle);
  std::ifstream in(oracle + "/mm/video/video_layout.json");
  const auto j = nlohmann::json::parse(in);
  const std::string clip = oracle + "/mm/video/photos_4s_2fps.mp4";
  for (const char* key : {"num_frames=8", "num_frames=4", "fps=1"}) {
    const auto& c = j["cases"][key];
    VideoOptions o;
    if (key[0] == 'n') {
      o.max_frames = key[11] == '8' ? 8 : 4;
    } else {
      o.sample_fps = 1;  // 4 s at 2 fps: int(8 / 2 * 1) = 4 frames
    }
    const Video v = load_video(clip, o);
    EXPECT_EQ(v.total_frames, 8);
    const auto want_idx = c["frame_indices"].get<std::vector<int64_t>>();
    const auto want_ts = c["timestamp_strings"].get<std::vector<std::string>>();
    ASSERT_EQ(v.frames.size(), want_idx.size()) << key;
    for (size_t i = 0; i < v.frames.size(); ++i) {
      EXPECT_EQ(v.frames[i].index, want_idx[i]);
      EXPECT_EQ(format_timestamp(v.frames[i].seconds), want_ts[i]);
      const ResizeTarget t =
          target_size(v.frames[i].image.height, v.frames[i].image.width, kVideoFrameBudget);
      EXPECT_EQ(t.height, c["frame_target_hw"][0].get<int>());
      EXPECT_EQ(t.width, c["frame_target_hw"][1].get<int>());
      EXPECT_EQ(t.tokens(), c["soft_tokens_per_frame"].get<int>());
    }
  }
  // Decoded pixels: YUV->RGB conversions differ by a few levels, so only the sums are compared.
  const Video all = load_video(clip, VideoOptions{8, true});
  for (const auto& f : j["frames_decoded"]["frames"]) {
    const size_t i = f["index"].get<size_t>();
    double sum = 0;
    for (uint8_t b : all.frames[i].image.rgb) sum += b;
    EXPECT_NEAR(sum / f["decoded_rgb24_sum"].get<double>(), 1.0, 0.01) << i;
  }
}

}  // namespace
}  // namespace ug::media
