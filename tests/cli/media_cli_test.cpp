// `unigemma run --video/--audio` end to end on the tiny oracle model: a video with an audio track,
// long audio split into clips (notice on stderr), and bad media as one-line errors with exit 2.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "media/video_maker.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct MediaCli : ::testing::Test {
  void SetUp() override {
    oracle = ug::test::oracle_dir();
    if (oracle.empty()) GTEST_SKIP() << "oracle pack not found";
    dir = fs::temp_directory_path() / ("ug_media_cli_" + std::to_string(::getpid()));
    fs::create_directories(dir);
  }
  void TearDown() override {
    if (!dir.empty()) fs::remove_all(dir);
  }
  Result run(const std::string& args) {
    const std::string cmd = ug::test::cli_path() + " run -m " + oracle +
                            "/models/tiny-a/gemma4-tiny-a-f32.gguf --mmproj " + oracle +
                            "/mm/model/mmproj-gemma4-tiny-a-f32.gguf -n 2 --temp 0 -t 2 " + args +
                            " >" + (dir / "out").string() + " 2>" + (dir / "err").string() +
                            " </dev/null";
    const int status = std::system(cmd.c_str());
    Result r;
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(dir / "out");
    r.err = slurp(dir / "err");
    return r;
  }
  void expect_bad(const Result& r, const std::string& what) {
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  std::string oracle;
  fs::path dir;
};

// 16-bit mono WAV of `seconds` of a quiet tone at 8 kHz.
void write_wav(const fs::path& path, int seconds) {
  const int rate = 8000;
  const uint32_t n = uint32_t(rate * seconds);
  std::ofstream out(path, std::ios::binary);
  auto put32 = [&](uint32_t v) { out.write(reinterpret_cast<const char*>(&v), 4); };
  auto put16 = [&](uint16_t v) { out.write(reinterpret_cast<const char*>(&v), 2); };
  out << "RIFF";
  put32(36 + n * 2);
  out << "WAVEfmt ";
  put32(16);
  put16(1);
  put16(1);
  put32(rate);
  put32(rate * 2);
  put16(2);
  put16(16);
  out << "data";
  put32(n * 2);
  for (uint32_t i = 0; i < n; ++i) put16(uint16_t(int16_t((i * 37) % 2000) - 1000));
}

TEST_F(MediaCli, VideoWithAudioTrack) {
  ug::test::TestVideo spec;
  spec.container = "matroska";
  spec.frames = 40;
  spec.fps = 1;
  spec.width = 160;
  spec.height = 96;
  spec.audio_codec = AV_CODEC_ID_PCM_S16LE;
  spec.audio_rate = 8000;
  spec.audio_channels = 1;
  const std::string video = (dir / "clip.mkv").string();
  ug::test::write_test_video(video, spec);
  const Result r = run("--json --video " + video + " -p 'What happens?'");
  ASSERT_EQ(r.code, 0) << r.err;
  // 32 frames of 60 soft tokens, 2 clips of audio (40 s): more than 32 * 60 + 1000 positions.
  EXPECT_NE(r.err.find("note: " + video + " (audio track): 40.0 s of audio split into 2"),
            std::string::npos)
      << r.err;
  const auto j = r.out.find("\"prompt_tokens\": ");
  ASSERT_NE(j, std::string::npos) << r.out;
  EXPECT_GT(std::stoi(r.out.substr(j + 17)), 32 * 60 + 1000);
  const Result silent = run("--json --video-audio off --video-frames 4 --video " + video + " -p x");
  ASSERT_EQ(silent.code, 0) << silent.err;
  EXPECT_EQ(silent.err.find("note:"), std::string::npos) << silent.err;
}

TEST_F(MediaCli, LongAudioIsSplitOrRefused) {
  const fs::path wav = dir / "talk.wav";
  write_wav(wav, 70);
  const Result r = run("--audio " + wav.string() + " -p 'Transcribe.'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("70.0 s of audio split into 3 consecutive clips"), std::string::npos)
      << r.err;
  expect_bad(run("--audio " + wav.string() + " --audio-max 60 -p x"), "--audio-max");
}

TEST_F(MediaCli, BadVideosAreOneLineErrors) {
  ug::test::TestVideo spec;
  spec.container = "matroska";
  spec.with_video = false;
  spec.audio_codec = AV_CODEC_ID_PCM_S16LE;
  const std::string sound = (dir / "sound.mkv").string();
  ug::test::write_test_video(sound, spec);
  expect_bad(run("--video " + sound + " -p x"), "no video stream");
  expect_bad(run("--video " + oracle + "/vision/images/astronaut.png -p x"), "not a video file");
  const fs::path text = dir / "notes.mp4";
  std::ofstream(text) << "just some text\n";
  expect_bad(run("--video " + text.string() + " -p x"), "notes.mp4");
  expect_bad(run("--video " + (dir / "missing.mp4").string() + " -p x"), "missing.mp4");
  expect_bad(run("--video-audio maybe -p x"), "--video-audio");
  expect_bad(run("--video-frames 33 -p x"), "--video-frames");
}

}  // namespace
