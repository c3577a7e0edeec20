// Multimodal prompt assembly (spec §2.4, §3.3): decodes and embeds images/audio with the projector,
// and expands the chat template's `<|image|>` / `<|audio|>` placeholders into
// `\n\n<|image>` + N soft tokens + `<image|>\n\n` (images) and `<|audio>` + N soft tokens +
// `<audio|>` (audio), producing the decoder input with embedding rows and image block ids.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/thread_pool.h"
#include "model/gemma4/decoder.h"
#include "model/gemma4/projector.h"
#include "tokenizer/tokenizer.h"

namespace ug {

enum class MediaKind { kImage, kAudio };
const char* media_kind_name(MediaKind kind);  // "image" / "audio"

struct MediaOptions {
  int image_budget = 280;         // soft tokens per image: 70, 140, 280, 560 or 1120
  double audio_max_seconds = 30;  // longer clips are refused (the model's training length)
};

// One embedded image or audio clip, ready to be placed in a prompt.
struct MediaEmbedding {
  MediaKind kind = MediaKind::kImage;
  std::string source;  // file name, for messages
  int n_tokens = 0;
  int grid_rows = 0, grid_cols = 0;  // images
  std::vector<float> rows;           // [n_tokens][n_embd]
  uint64_t content_hash = 0;         // identifies the content for prompt-cache reuse
};

// Decode + preprocess + embed. Throw ug::Error (bad file, missing projector part, too long...).
MediaEmbedding embed_image_file(const gemma4::Projector& projector, const std::string& path,
                                const MediaOptions& options, ThreadPool& pool);
MediaEmbedding embed_audio_file(const gemma4::Projector& projector, const std::string& path,
                                const MediaOptions& options, ThreadPool& pool);
MediaEmbedding embed_media_file(const gemma4::Projector& projector, MediaKind kind,
                                const std::string& path, const MediaOptions& options,
                                ThreadPool& pool);
// Embeds already-preprocessed inputs (patches in HWC order / 16 kHz mono samples).
MediaEmbedding embed_patches(const gemma4::Projector& projector, const std::vector<float>& patches,
                             const std::vector<int32_t>& pos_x, const std::vector<int32_t>& pos_y,
                             ThreadPool& pool);
MediaEmbedding embed_samples(const gemma4::Projector& projector, const std::vector<float>& samples,
                             ThreadPool& pool);

struct AssembledPrompt {
  gemma4::Input input;  // tokens (-1 at soft positions), embedding rows, image block ids
  // Same length as input.tokens: the soft-token placeholder id (<|image|> / <|audio|>) at soft
  // positions; for comparing with reference id lists.
  std::vector<int32_t> ids;
  // Same length: text ids, and at soft positions a negative key derived from the media content,
  // so that a cached prefix is reused only when the media are the same.
  std::vector<int32_t> cache_keys;
};

// Expands the placeholders of a rendered prompt (which must contain exactly media.size()
// placeholders, matched in order and by kind) and tokenizes it with special tokens parsed, no BOS
// added. Throws ug::Error when counts or kinds disagree or the vocabulary lacks the markers.
AssembledPrompt assemble_prompt(const std::string& rendered, const Tokenizer& tokenizer,
                                const std::vector<const MediaEmbedding*>& media, int n_embd);

}  // namespace ug
