#include "runtime/multimodal.h"

#include <cmath>
#include <cstring>

#include "media/audio.h"
#include "media/image.h"
#include "media/video.h"
#include "util/error.h"

namespace ug {

namespace {

uint64_t fnv1a(const void* data, size_t n, uint64_t h = 1469598103934665603ull) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

const gemma4::VisionEmbedder& need_vision(const gemma4::Projector& p, const std::string& what) {
  if (!p.vision) throw Error(what + ": the projector " + p.path + " has no vision embedder");
  return *p.vision;
}
const gemma4::AudioEmbedder& need_audio(const gemma4::Projector& p, const std::string& what) {
  if (!p.audio) throw Error(what + ": the projector " + p.path + " has no audio embedder");
  return *p.audio;
}

}  // namespace

const char* media_kind_name(MediaKind kind) {
  switch (kind) {
    case MediaKind::kImage:
      return "image";
    case MediaKind::kAudio:
      return "audio";
    case MediaKind::kVideo:
      return "video";
  }
  return "?";
}

bool parse_media_kind(const std::string& name, MediaKind* kind) {
  for (MediaKind k : {MediaKind::kImage, MediaKind::kAudio, MediaKind::kVideo}) {
    if (name == media_kind_name(k)) {
      *kind = k;
      return true;
    }
  }
  return false;
}

MediaEmbedding embed_patches(const gemma4::Projector& projector, const std::vector<float>& patches,
                             const std::vector<int32_t>& pos_x, const std::vector<int32_t>& pos_y,
                             ThreadPool& pool) {
  const auto& v = need_vision(projector, "image");
  const int n = int(pos_x.size());
  if (pos_y.size() != pos_x.size() || patches.size() != size_t(n) * size_t(v.patch_values)) {
    throw Error("image: patch data does not match the number of positions");
  }
  MediaEmbedding m;
  m.kind = MediaKind::kImage;
  m.n_tokens = n;
  m.rows = gemma4::embed_patches(v, patches.data(), pos_x.data(), pos_y.data(), n, pool);
  m.content_hash = fnv1a(patches.data(), patches.size() * sizeof(float));
  m.content_hash = fnv1a(pos_x.data(), pos_x.size() * 4, m.content_hash);
  return m;
}

MediaEmbedding embed_samples(const gemma4::Projector& projector, const std::vector<float>& samples,
                             ThreadPool& pool) {
  const auto& a = need_audio(projector, "audio");
  const std::vector<float> frames = media::audio_frames(samples);
  MediaEmbedding m;
  m.kind = MediaKind::kAudio;
  m.n_tokens = media::audio_tokens(samples.size());
  m.rows = gemma4::embed_audio_frames(a, frames.data(), m.n_tokens, pool);
  m.content_hash = fnv1a(frames.data(), frames.size() * sizeof(float), 0x9e3779b97f4a7c15ull);
  return m;
}

MediaEmbedding embed_image_file(const gemma4::Projector& projector, const std::string& path,
                                const MediaOptions& options, ThreadPool& pool) {
  need_vision(projector, path);
  const media::Image img = media::load_image(path);
  const media::Patches p = media::preprocess_image(img, options.image_budget);
  MediaEmbedding m = embed_patches(projector, p.values, p.pos_x, p.pos_y, pool);
  m.source = path;
  m.grid_rows = p.rows;
  m.grid_cols = p.cols;
  return m;
}

namespace {

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", s);
  return buf;
}

void append(MediaEmbedding& to, const MediaEmbedding& part) {
  to.rows.insert(to.rows.end(), part.rows.begin(), part.rows.end());
  to.n_tokens += part.n_tokens;
  to.content_hash = fnv1a(&part.content_hash, sizeof(part.content_hash), to.content_hash);
  to.notices.insert(to.notices.end(), part.notices.begin(), part.notices.end());
}

MediaEmbedding long_audio(const gemma4::Projector& projector, const std::vector<float>& samples,
                          const std::string& what, const MediaOptions& options,
                          const std::string& hint, ThreadPool& pool) {
  need_audio(projector, what);
  const double seconds = double(samples.size()) / media::kAudioSampleRate;
  // Codec padding (an AAC track of a 5-minute video decodes to 300.03 s) is not held against
  // the limit the user stated in whole seconds.
  if (seconds > options.audio_max_seconds + 0.5) {
    throw Error(what + ": " + seconds_text(seconds) + " of audio, more than the limit of " +
                seconds_text(options.audio_max_seconds) + " (raise it with --audio-max SECONDS" +
                hint + "; the model was trained on clips up to 30 s, longer audio is split)");
  }
  // Clip boundaries fall on 640-sample frames, so splitting adds no padding inside the audio.
  const size_t clip =
      size_t(std::max(1.0, std::floor(options.audio_clip_seconds * media::kAudioSampleRate /
                                      media::kAudioFrame))) *
      media::kAudioFrame;
  MediaEmbedding m;
  m.kind = MediaKind::kAudio;
  m.source = what;
  m.content_hash = 0x9e3779b97f4a7c15ull;
  size_t clips = 0;
  for (size_t at = 0; at < samples.size() || at == 0; at += clip) {
    const size_t end = std::min(samples.size(), at + clip);
    const MediaEmbedding part =
        embed_samples(projector,
                      std::vector<float>(samples.begin() + std::ptrdiff_t(at),
                                         samples.begin() + std::ptrdiff_t(end)),
                      pool);
    append(m, part);
    m.segments.push_back({MediaKind::kAudio, part.n_tokens, {}});
    ++clips;
    if (end == samples.size()) break;
  }
  if (clips > 1) {
    m.notices.push_back(what + ": " + seconds_text(seconds) + " of audio split into " +
                        std::to_string(clips) + " consecutive clips of up to " +
                        seconds_text(double(clip) / media::kAudioSampleRate) +
                        " (the model was trained on clips up to 30 s)");
  }
  return m;
}

}  // namespace

MediaEmbedding embed_long_audio(const gemma4::Projector& projector,
                                const std::vector<float>& samples, const std::string& what,
                                const MediaOptions& options, ThreadPool& pool) {
  return long_audio(projector, samples, what, options, "", pool);
}

MediaEmbedding embed_audio_file(const gemma4::Projector& projector, const std::string& path,
                                const MediaOptions& options, ThreadPool& pool) {
  need_audio(projector, path);
  media::AudioLimits limits;
  limits.max_seconds = options.audio_max_seconds + 1;  // the exact check follows resampling
  const media::Audio audio = media::load_audio(path, limits);
  MediaEmbedding m = embed_long_audio(projector, audio.samples, path, options, pool);
  m.source = path;
  return m;
}

MediaEmbedding embed_video_file(const gemma4::Projector& projector, const std::string& path,
                                const MediaOptions& options, ThreadPool& pool) {
  need_vision(projector, path);
  media::VideoOptions vo;
  vo.max_frames = options.video_frames;
  vo.sample_fps = options.video_fps;
  vo.audio = options.video_audio;
  media::VideoLimits limits;
  limits.max_audio_seconds = options.audio_max_seconds + 1;
  const media::Video video = media::load_video(path, vo, limits);
  MediaEmbedding m;
  m.kind = MediaKind::kVideo;
  m.source = path;
  m.content_hash = 0x51ed270b27b5e3a9ull;
  for (const media::VideoFrame& f : video.frames) {
    const media::Patches p = media::preprocess_image(f.image, options.video_frame_budget);
    const MediaEmbedding e = embed_patches(projector, p.values, p.pos_x, p.pos_y, pool);
    append(m, e);
    m.segments.push_back({MediaKind::kVideo, e.n_tokens, media::format_timestamp(f.seconds)});
    m.grid_rows = p.rows;
    m.grid_cols = p.cols;
  }
  if (video.has_audio && !projector.audio) {
    m.notices.push_back(path + ": the audio track is ignored: the projector " + projector.path +
                        " has no audio embedder");
  } else if (video.has_audio) {
    MediaEmbedding a = long_audio(projector, video.audio.samples, path + " (audio track)", options,
                                  ", or leave the track out with --video-audio off", pool);
    append(m, a);
    m.segments.insert(m.segments.end(), a.segments.begin(), a.segments.end());
  }
  return m;
}

MediaEmbedding embed_media_file(const gemma4::Projector& projector, MediaKind kind,
                                const std::string& path, const MediaOptions& options,
                                ThreadPool& pool) {
  switch (kind) {
    case MediaKind::kImage:
      return embed_image_file(projector, path, options, pool);
    case MediaKind::kAudio:
      return embed_audio_file(projector, path, options, pool);
    case MediaKind::kVideo:
      return embed_video_file(projector, path, options, pool);
  }
  throw Error(path + ": unknown media kind");
}

AssembledPrompt assemble_prompt(const std::string& rendered, const Tokenizer& tokenizer,
                                const std::vector<const MediaEmbedding*>& media, int n_embd) {
  static const char* kPlaceholders[] = {"<|image|>", "<|audio|>", "<|video|>"};
  auto token = [&](const char* text) {
    const int32_t id = tokenizer.find_token(text);
    if (id < 0) throw Error(std::string("prompt: the vocabulary has no '") + text + "' token");
    return id;
  };
  AssembledPrompt out;
  EncodeOptions eo;
  eo.add_bos = false;
  eo.parse_special = true;
  size_t pos = 0;
  size_t item = 0;
  std::string text;  // pending text, tokenized at the next soft-token run or at the end
  int32_t next_block = 0;
  auto flush_text = [&]() {
    for (int32_t id : tokenizer.encode(text, eo)) {
      out.input.tokens.push_back(id);
      out.ids.push_back(id);
      out.cache_keys.push_back(id);
      out.input.block.push_back(-1);
    }
    text.clear();
  };
  for (;;) {
    const size_t a = rendered.find("<|", pos);
    if (a == std::string::npos) break;
    int which = -1;
    for (int k = 0; k < 3; ++k) {
      if (rendered.compare(a, 9, kPlaceholders[k]) == 0) which = k;
    }
    if (which < 0) {
      text.append(rendered, pos, a + 2 - pos);
      pos = a + 2;
      continue;
    }
    text.append(rendered, pos, a - pos);
    pos = a + 9;
    const MediaKind kind = MediaKind(which);
    if (item >= media.size()) {
      throw Error("prompt: the conversation has more " + std::string(media_kind_name(kind)) +
                  " placeholders than attached media (" + std::to_string(media.size()) + ")");
    }
    const MediaEmbedding& m = *media[item];
    if (m.kind != kind) {
      throw Error("prompt: media item " + std::to_string(item + 1) + " is " +
                  media_kind_name(m.kind) + " but the conversation expects " +
                  media_kind_name(kind) + " there");
    }
    if (m.rows.size() != size_t(m.n_tokens) * size_t(n_embd)) {
      throw Error("prompt: media item " + std::to_string(item + 1) +
                  " was embedded for another model width");
    }
    std::vector<MediaSegment> segments = m.segments;
    if (segments.empty()) segments.push_back({m.kind, m.n_tokens, {}});
    int total = 0;
    for (const MediaSegment& seg : segments) total += seg.n_tokens;
    if (total != m.n_tokens) {
      throw Error("prompt: media item " + std::to_string(item + 1) + " has inconsistent segments");
    }
    int soft_index = 0;  // within the item, for the cache keys
    bool first_frame = true;
    for (size_t k = 0; k < segments.size(); ++k) {
      const MediaSegment& seg = segments[k];
      const bool frame = seg.kind == MediaKind::kVideo;
      const bool last_frame =
          frame && (k + 1 == segments.size() || segments[k + 1].kind != MediaKind::kVideo);
      if (seg.kind == MediaKind::kImage) {
        text += "\n\n<|image>";
      } else if (seg.kind == MediaKind::kAudio) {
        text += "<|audio>";
      } else {
        text += first_frame ? "\n\n" : " ";
        text += seg.timestamp + " <|image>";
        first_frame = false;
      }
      flush_text();
      const int32_t ph = token(kPlaceholders[int(seg.kind)]);
      const int32_t block = seg.kind == MediaKind::kAudio ? -1 : next_block++;
      for (int i = 0; i < seg.n_tokens; ++i, ++soft_index) {
        out.input.tokens.push_back(-1);
        out.ids.push_back(ph);
        // Negative keys never equal a token id; different content gives different keys.
        out.cache_keys.push_back(-1 -
                                 int32_t((m.content_hash + uint64_t(soft_index)) & 0x3fffffff));
        out.input.block.push_back(block);
      }
      if (seg.kind == MediaKind::kImage) {
        text = "<image|>\n\n";
      } else if (seg.kind == MediaKind::kAudio) {
        text = "<audio|>";
      } else {
        text = last_frame ? "<image|>\n\n" : "<image|>";
      }
    }
    out.input.embeddings.insert(out.input.embeddings.end(), m.rows.begin(), m.rows.end());
    ++item;
  }
  text.append(rendered, pos, std::string::npos);
  flush_text();
  if (item != media.size()) {
    throw Error("prompt: " + std::to_string(media.size()) + " media items attached but the " +
                "conversation has " + std::to_string(item) + " placeholders");
  }
  if (next_block == 0) out.input.block.clear();
  return out;
}

}  // namespace ug
