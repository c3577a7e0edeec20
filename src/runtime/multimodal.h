// Multimodal prompt assembly (spec §2.4, §2.5, §3.3): decodes and embeds images, audio and video
// with the projector, and expands the chat template's placeholders: `<|image|>` into
// `\n\n<|image>` + N soft tokens + `<image|>\n\n`; `<|audio|>` into `<|audio>` + N soft tokens +
// `<audio|>` per clip (audio longer than the per-clip limit is several consecutive clips);
// `<|video|>` into `\n\n` + frames joined by one space + `\n\n`, each frame being
// `mm:ss <|image>` + N `<|video|>` soft tokens + `<image|>`, followed by the video's audio track as
// audio clips. Produces the decoder input with embedding rows and bidirectional block ids (one
// block per image and per video frame; audio stays causal).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/thread_pool.h"
#include "model/gemma4/decoder.h"
#include "model/gemma4/projector.h"
#include "tokenizer/tokenizer.h"

namespace ug {

enum class MediaKind { kImage, kAudio, kVideo };
const char* media_kind_name(MediaKind kind);  // "image" / "audio" / "video"
// Inverse of media_kind_name; false for other names.
bool parse_media_kind(const std::string& name, MediaKind* kind);

struct MediaOptions {
  int image_budget = 280;          // soft tokens per image: 70, 140, 280, 560 or 1120
  double audio_clip_seconds = 30;  // longer audio is split into clips of this length (the
                                   // model's training length)
  double audio_max_seconds = 300;  // total audio per file (or video track); longer is refused
  int video_frames = 32;           // frames sampled per video (at most 32)
  double video_fps = 0;            // > 0: sample this many frames per second (at most video_frames)
  int video_frame_budget = 70;     // soft tokens per video frame
  bool video_audio = true;         // a video's audio track becomes audio clips after its frames
};

// A run of soft tokens inside one media item: an image, one audio clip, or one video frame.
struct MediaSegment {
  MediaKind kind = MediaKind::kImage;
  int n_tokens = 0;
  std::string timestamp;  // video frames: "mm:ss"
};

// One embedded image, audio file or video, ready to be placed in a prompt.
struct MediaEmbedding {
  MediaKind kind = MediaKind::kImage;
  std::string source;                // file name, for messages
  int n_tokens = 0;                  // all segments together
  int grid_rows = 0, grid_cols = 0;  // images (and each video frame)
  std::vector<float> rows;           // [n_tokens][n_embd], segments in order
  uint64_t content_hash = 0;         // identifies the content for prompt-cache reuse
  // Empty means one segment of `kind` with all n_tokens. Videos: frames, then audio clips.
  std::vector<MediaSegment> segments;
  // Things the user should know (audio split into clips, audio track ignored...), one line each.
  std::vector<std::string> notices;
};

// Decode + preprocess + embed. Throw ug::Error (bad file, missing projector part, too long...).
MediaEmbedding embed_image_file(const gemma4::Projector& projector, const std::string& path,
                                const MediaOptions& options, ThreadPool& pool);
MediaEmbedding embed_audio_file(const gemma4::Projector& projector, const std::string& path,
                                const MediaOptions& options, ThreadPool& pool);
MediaEmbedding embed_video_file(const gemma4::Projector& projector, const std::string& path,
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
// Embeds 16 kHz mono audio of any length as consecutive clips of at most
// options.audio_clip_seconds, refusing more than options.audio_max_seconds in all (`what` names
// the audio in messages). Adds a notice when it splits.
MediaEmbedding embed_long_audio(const gemma4::Projector& projector,
                                const std::vector<float>& samples, const std::string& what,
                                const MediaOptions& options, ThreadPool& pool);

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
