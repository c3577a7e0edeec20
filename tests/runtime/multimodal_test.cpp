// Multimodal prompt assembly (spec §2.4, §3.3) against the oracle's mixed-prompt layouts.
#include <fstream>
#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "runtime/multimodal.h"
#include "test_support.h"
#include "util/error.h"

namespace ug {
namespace {

MediaEmbedding fake(MediaKind kind, int n, int n_embd, float value) {
  MediaEmbedding m;
  m.kind = kind;
  m.n_tokens = n;
  m.rows.assign(size_t(n) * n_embd, value);
  m.content_hash = uint64_t(value * 1000);
  return m;
}

struct MultimodalPrompt : ::testing::Test {
  void SetUp() override {
    oracle = test::oracle_dir();
    if (oracle.empty()) GTEST_SKIP() << "oracle pack not found";
    auto f = gguf::File::open(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
    tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_gguf(*f));
  }
  std::string oracle;
  std::unique_ptr<Tokenizer> tokenizer;
};

TEST_F(MultimodalPrompt, ExpandsPlaceholdersLikeTheReferenceProcessor) {
  // mm_image_audio: image (64 tokens), text, audio (79 tokens) in one user turn.
  std::ifstream in(oracle + "/mm/mm_image_audio/layout_and_logits.json");
  const auto j = nlohmann::json::parse(in);
  const auto want = j["ids"].get<std::vector<int32_t>>();
  const MediaEmbedding img = fake(MediaKind::kImage, 64, 256, 1.0f);
  const MediaEmbedding aud = fake(MediaKind::kAudio, 79, 256, 2.0f);
  const std::string rendered =
      "<bos><|turn>user\n<|image|>Describe the picture, then transcribe the audio: "
      "<|audio|><turn|>\n<|turn>model\n";
  const AssembledPrompt p = assemble_prompt(rendered, *tokenizer, {&img, &aud}, 256);
  EXPECT_EQ(p.ids, want);
  ASSERT_EQ(p.input.tokens.size(), want.size());
  ASSERT_EQ(p.input.block.size(), want.size());
  ASSERT_EQ(p.input.embeddings.size(), size_t(64 + 79) * 256);
  EXPECT_EQ(p.input.embeddings[0], 1.0f);
  EXPECT_EQ(p.input.embeddings.back(), 2.0f);
  for (size_t i = 0; i < want.size(); ++i) {
    const bool image = i >= 5 && i < 69, audio = i >= 88 && i < 167;
    EXPECT_EQ(p.input.tokens[i] < 0, image || audio) << i;
    EXPECT_EQ(p.input.block[i], image ? 0 : -1) << i;  // audio is causal: no block
    EXPECT_EQ(p.cache_keys[i] < 0, image || audio) << i;
  }
}

TEST_F(MultimodalPrompt, TwoImagesAreTwoBlocks) {
  std::ifstream in(oracle + "/mm/mm_two_images/layout_and_logits.json");
  const auto j = nlohmann::json::parse(in);
  const MediaEmbedding a = fake(MediaKind::kImage, 60, 256, 1.0f);
  const MediaEmbedding b = fake(MediaKind::kImage, 63, 256, 3.0f);
  const AssembledPrompt p =
      assemble_prompt("<bos><|turn>user\nCompare<|image|>with<|image|><turn|>\n<|turn>model\n",
                      *tokenizer, {&a, &b}, 256);
  EXPECT_EQ(p.ids, j["ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(p.input.block[9], 0);
  EXPECT_EQ(p.input.block[74], 1);
  EXPECT_NE(p.cache_keys[9], p.cache_keys[74]);  // different content, different keys
}

TEST_F(MultimodalPrompt, MismatchedMediaAreErrors) {
  const MediaEmbedding img = fake(MediaKind::kImage, 4, 256, 1.0f);
  const MediaEmbedding aud = fake(MediaKind::kAudio, 4, 256, 1.0f);
  EXPECT_THROW(assemble_prompt("<|image|><|image|>", *tokenizer, {&img}, 256), Error);
  EXPECT_THROW(assemble_prompt("text only", *tokenizer, {&img}, 256), Error);
  EXPECT_THROW(assemble_prompt("<|image|>", *tokenizer, {&aud}, 256), Error);
  EXPECT_THROW(assemble_prompt("<|image|>", *tokenizer, {&img}, 128), Error);
  EXPECT_THROW(assemble_prompt("<|video|>", *tokenizer, {}, 256), Error);
  const AssembledPrompt plain = assemble_prompt("<|turn>user\nhi", *tokenizer, {}, 256);
  EXPECT_TRUE(plain.input.block.empty());
  EXPECT_EQ(plain.ids, plain.cache_keys);
}

}  // namespace
}  // namespace ug
