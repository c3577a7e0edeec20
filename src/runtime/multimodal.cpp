#include "runtime/multimodal.h"

#include <cmath>
#include <cstring>

#include "media/audio.h"
#include "media/image.h"
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
  return kind == MediaKind::kImage ? "image" : "audio";
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

MediaEmbedding embed_audio_file(const gemma4::Projector& projector, const std::string& path,
                                const MediaOptions& options, ThreadPool& pool) {
  need_audio(projector, path);
  const media::Audio audio = media::load_audio(path);
  const double seconds = double(audio.samples.size()) / media::kAudioSampleRate;
  if (seconds > options.audio_max_seconds + 1e-9) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.1f s long, more than the %.0f s", seconds,
                  options.audio_max_seconds);
    throw Error(path + ": audio is " + buf +
                " limit (the model was trained on clips up to 30 s; split it, or raise the limit "
                "with --audio-max SECONDS)");
  }
  MediaEmbedding m = embed_samples(projector, audio.samples, pool);
  m.source = path;
  return m;
}

MediaEmbedding embed_media_file(const gemma4::Projector& projector, MediaKind kind,
                                const std::string& path, const MediaOptions& options,
                                ThreadPool& pool) {
  return kind == MediaKind::kImage ? embed_image_file(projector, path, options, pool)
                                   : embed_audio_file(projector, path, options, pool);
}

AssembledPrompt assemble_prompt(const std::string& rendered, const Tokenizer& tokenizer,
                                const std::vector<const MediaEmbedding*>& media, int n_embd) {
  static const char* kImagePh = "<|image|>";
  static const char* kAudioPh = "<|audio|>";
  static const char* kVideoPh = "<|video|>";
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
    const bool is_image = rendered.compare(a, 9, kImagePh) == 0;
    const bool is_audio = rendered.compare(a, 9, kAudioPh) == 0;
    if (rendered.compare(a, 9, kVideoPh) == 0) {
      throw Error("prompt: video input is not supported yet");
    }
    if (!is_image && !is_audio) {
      text.append(rendered, pos, a + 2 - pos);
      pos = a + 2;
      continue;
    }
    text.append(rendered, pos, a - pos);
    pos = a + 9;
    const MediaKind kind = is_image ? MediaKind::kImage : MediaKind::kAudio;
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
    text += is_image ? "\n\n<|image>" : "<|audio>";
    flush_text();
    const int32_t ph = token(is_image ? kImagePh : kAudioPh);
    const int32_t block = is_image ? next_block++ : -1;
    for (int i = 0; i < m.n_tokens; ++i) {
      out.input.tokens.push_back(-1);
      out.ids.push_back(ph);
      // Negative keys never equal a token id; different content gives different keys.
      out.cache_keys.push_back(-1 - int32_t((m.content_hash + uint64_t(i)) & 0x3fffffff));
      out.input.block.push_back(block);
    }
    out.input.embeddings.insert(out.input.embeddings.end(), m.rows.begin(), m.rows.end());
    text = is_image ? "<image|>\n\n" : "<audio|>";
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
