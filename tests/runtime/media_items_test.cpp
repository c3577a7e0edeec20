// Video and long-audio media items (spec §2.5, §3): the video prompt layout against the oracle's
// real-vocabulary ids, embedding a generated video through the tiny projector, splitting long
// audio into clips, and restoring media when a saved conversation is loaded.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "media/image.h"
#include "media/video.h"
#include "media/video_maker.h"
#include "model/gemma4/model.h"
#include "runtime/chat_session.h"
#include "runtime/multimodal.h"
#include "test_support.h"
#include "util/error.h"

namespace ug {
namespace {

namespace fs = std::filesystem;

TEST(VideoPrompt, LayoutMatchesTheReferenceProcessor) {
  UG_REQUIRE_ORACLE(oracle);
  std::ifstream in(oracle + "/mm/video/video_layout.json");
  const auto j = nlohmann::json::parse(in);
  const auto& c = j["cases"]["num_frames=4"];
  auto f = gguf::File::open(oracle + "/tokenizer/ggml-vocab-gemma4.gguf");
  const Tokenizer tok = Tokenizer::from_gguf(*f);
  const int n_embd = 8;
  MediaEmbedding video;
  video.kind = MediaKind::kVideo;
  for (const auto& ts : c["timestamp_strings"]) {
    video.segments.push_back({MediaKind::kVideo, 60, ts.get<std::string>()});
    video.n_tokens += 60;
  }
  video.rows.assign(size_t(video.n_tokens) * n_embd, 0.5f);
  const AssembledPrompt p =
      assemble_prompt("<bos><|turn>user\n<|video|>Describe the video.<turn|>\n<|turn>model\n", tok,
                      {&video}, n_embd);
  EXPECT_EQ(p.ids, c["real_vocab_ids"].get<std::vector<int32_t>>());
  ASSERT_EQ(p.input.block.size(), p.ids.size());
  // Each frame's <|video|> run is its own bidirectional block, exactly those positions.
  int block = 0;
  for (const auto& range : c["vision_blocks_inclusive"]) {
    const int a = range[0].get<int>(), b = range[1].get<int>();
    EXPECT_EQ(p.input.block[size_t(a) - 1], -1);
    for (int i = a; i <= b; ++i) ASSERT_EQ(p.input.block[size_t(i)], block) << i;
    EXPECT_EQ(p.input.block[size_t(b) + 1], -1);
    ++block;
  }
  const auto types = c["mm_token_type_ids"].get<std::vector<int>>();
  for (size_t i = 0; i < types.size(); ++i) EXPECT_EQ(p.input.tokens[i] < 0, types[i] == 2) << i;

  // With an audio track: its clips follow the frames as causal audio runs.
  MediaEmbedding with_audio = video;
  with_audio.segments.push_back({MediaKind::kAudio, 5, {}});
  with_audio.segments.push_back({MediaKind::kAudio, 3, {}});
  with_audio.n_tokens += 8;
  with_audio.rows.resize(size_t(with_audio.n_tokens) * n_embd, 1.0f);
  const AssembledPrompt q = assemble_prompt("<|video|>", tok, {&with_audio}, n_embd);
  const int32_t audio_open = tok.find_token("<|audio>"), audio_close = tok.find_token("<audio|>");
  const int32_t audio_ph = tok.find_token("<|audio|>"), image_close = tok.find_token("<image|>");
  std::vector<int32_t> tail(q.ids.end() - 12, q.ids.end());
  std::vector<int32_t> want_tail = {audio_open, audio_ph, audio_ph,    audio_ph,
                                    audio_ph,   audio_ph, audio_close, audio_open,
                                    audio_ph,   audio_ph, audio_ph,    audio_close};
  EXPECT_EQ(tail, want_tail);
  const auto last_frame_end = std::find(q.ids.rbegin(), q.ids.rend(), image_close);
  ASSERT_NE(last_frame_end, q.ids.rend());
  for (size_t i = q.ids.size() - 12; i < q.ids.size(); ++i) EXPECT_EQ(q.input.block[i], -1);
  EXPECT_EQ(q.input.embeddings.size(), with_audio.rows.size());
}

struct TinyProjector : ::testing::Test {
  void SetUp() override {
    oracle = test::oracle_dir();
    if (oracle.empty()) GTEST_SKIP() << "oracle pack not found";
    projector = gemma4::load_projector(oracle + "/mm/model/mmproj-gemma4-tiny-a-f32.gguf", 256);
    dir = fs::temp_directory_path() /
          ("ug_media_items_" +
           std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::create_directories(dir);
  }
  void TearDown() override {
    if (!dir.empty()) fs::remove_all(dir);
  }
  std::string oracle;
  std::unique_ptr<gemma4::Projector> projector;
  ThreadPool pool{2};
  fs::path dir;
};

TEST_F(TinyProjector, LongAudioIsSplitIntoClips) {
  std::vector<float> samples(size_t(75.5 * 16000));
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = 0.3f * std::sin(0.05f * float(i));
  MediaOptions o;
  const MediaEmbedding m = embed_long_audio(*projector, samples, "talk.wav", o, pool);
  ASSERT_EQ(m.segments.size(), 3u);
  EXPECT_EQ(m.segments[0].n_tokens, 750);
  EXPECT_EQ(m.segments[1].n_tokens, 750);
  EXPECT_EQ(m.segments[2].n_tokens, 388);  // ceil(15.5 s * 16000 / 640)
  EXPECT_EQ(m.n_tokens, 750 + 750 + 388);
  ASSERT_EQ(m.notices.size(), 1u);
  EXPECT_NE(m.notices[0].find("3 consecutive clips"), std::string::npos) << m.notices[0];
  // Each clip is embedded on its own: the rows equal the clips embedded separately.
  const std::vector<float> second(samples.begin() + 480000, samples.begin() + 960000);
  const MediaEmbedding clip = embed_samples(*projector, second, pool);
  ASSERT_EQ(m.rows.size(), size_t(m.n_tokens) * 256);
  EXPECT_TRUE(std::equal(clip.rows.begin(), clip.rows.end(), m.rows.begin() + 750 * 256));
  // Up to the clip length: one clip, no notice.
  const std::vector<float> short_one(samples.begin(), samples.begin() + 480000);
  const MediaEmbedding s = embed_long_audio(*projector, short_one, "short.wav", o, pool);
  EXPECT_EQ(s.segments.size(), 1u);
  EXPECT_TRUE(s.notices.empty());
  // Half a second over --audio-max is codec padding, not refused; beyond: refused with guidance.
  o.audio_max_seconds = 75.1;
  EXPECT_EQ(embed_long_audio(*projector, samples, "talk.wav", o, pool).n_tokens, m.n_tokens);
  o.audio_max_seconds = 74.9;
  EXPECT_THROW(embed_long_audio(*projector, samples, "talk.wav", o, pool), Error);
  o.audio_max_seconds = 60;
  try {
    embed_long_audio(*projector, samples, "talk.wav", o, pool);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--audio-max"), std::string::npos) << e.what();
  }
  // The prompt gets one <|audio>...<audio|> run per clip, none of them bidirectional.
  auto f = gguf::File::open(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  const Tokenizer tok = Tokenizer::from_gguf(*f);
  const AssembledPrompt p = assemble_prompt("a<|audio|>b", tok, {&m}, 256);
  EXPECT_EQ(std::count(p.ids.begin(), p.ids.end(), tok.find_token("<|audio>")), 3);
  EXPECT_EQ(std::count(p.ids.begin(), p.ids.end(), tok.find_token("<audio|>")), 3);
  EXPECT_TRUE(p.input.block.empty());
}

TEST_F(TinyProjector, VideoFileBecomesFramesThenAudioClips) {
  test::TestVideo spec;
  spec.container = "matroska";
  spec.frames = 40;
  spec.fps = 1;  // 40 s, so the audio track is split too
  spec.width = 160;
  spec.height = 96;
  spec.audio_codec = AV_CODEC_ID_PCM_S16LE;
  spec.audio_rate = 8000;
  spec.audio_channels = 1;
  const std::string path = (dir / "v.mkv").string();
  test::write_test_video(path, spec);
  MediaOptions o;
  const MediaEmbedding m = embed_video_file(*projector, path, o, pool);
  EXPECT_EQ(m.kind, MediaKind::kVideo);
  const media::ResizeTarget t = media::target_size(96, 160, 70);
  ASSERT_EQ(m.segments.size(), 32u + 2u);
  for (size_t i = 0; i < 32; ++i) {
    EXPECT_EQ(m.segments[i].kind, MediaKind::kVideo);
    EXPECT_EQ(m.segments[i].n_tokens, t.tokens());
    EXPECT_EQ(m.segments[i].timestamp, media::format_timestamp(double(int64_t(i * 1.25))));
  }
  EXPECT_EQ(m.segments[32].kind, MediaKind::kAudio);
  EXPECT_EQ(m.segments[32].n_tokens, 750);
  EXPECT_EQ(m.segments[33].n_tokens, 250);
  EXPECT_EQ(m.n_tokens, 32 * t.tokens() + 1000);
  EXPECT_EQ(m.rows.size(), size_t(m.n_tokens) * 256);
  EXPECT_EQ(m.notices.size(), 1u);
  o.video_audio = false;
  o.video_frames = 4;
  const MediaEmbedding silent = embed_video_file(*projector, path, o, pool);
  EXPECT_EQ(silent.segments.size(), 4u);
  EXPECT_EQ(silent.segments[3].timestamp, "00:30");
}

TEST_F(TinyProjector, LoadedConversationGetsItsMediaBack) {
  auto model = gemma4::load_model(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  auto f = gguf::File::open(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  const Tokenizer tok = Tokenizer::from_gguf(*f);
  const std::string image = (dir / "photo.png").string();
  fs::copy_file(oracle + "/vision/images/astronaut.png", image);
  ChatOptions co;
  co.max_tokens = 4;
  co.sampling.temperature = 0;
  co.n_ctx = 1024;
  MediaOptions mo;
  mo.image_budget = 70;

  ChatSession a(*model, tok, pool, co);
  a.set_projector(projector.get(), mo);
  a.attach(MediaKind::kImage, image);
  a.send("What is this?", nullptr);
  const nlohmann::ordered_json saved = a.save();
  const auto& part = saved["messages"][0]["content"][0];
  EXPECT_EQ(part["type"], "image");
  EXPECT_EQ(part["source"], fs::absolute(image).lexically_normal().string());
  EXPECT_EQ(part["image_tokens"], 70);
  const ChatReply ra = a.send("And now?", nullptr);

  ChatSession b(*model, tok, pool, co);
  b.set_projector(projector.get(), MediaOptions{});  // other defaults: the saved part decides
  b.load(nlohmann::ordered_json::parse(saved.dump()));
  const ChatReply rb = b.send("And now?", nullptr);
  EXPECT_EQ(rb.stats.prompt_tokens, ra.stats.prompt_tokens);
  EXPECT_EQ(rb.content, ra.content);

  // Without the projector, with the file gone or changed: clear errors, nothing replaced.
  ChatSession c(*model, tok, pool, co);
  EXPECT_THROW(c.load(saved), Error);
  c.set_projector(projector.get(), mo);
  fs::copy_file(oracle + "/vision/images/chelsea.png", image, fs::copy_options::overwrite_existing);
  EXPECT_THROW(c.load(saved), Error);
  fs::remove(image);
  try {
    c.load(saved);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no longer exists"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(c.messages().empty());
}

}  // namespace
}  // namespace ug
