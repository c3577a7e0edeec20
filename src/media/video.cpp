// Video decoding with libavformat/libavcodec/libswscale/libswresample. Two passes over the file:
// the first demuxes every packet (no video decoding) to learn the frames' presentation times and
// key frames, and decodes the audio track on the way; the second seeks to the key frame before each
// sampled frame only when decoding forward would take longer, and converts the sampled frames to
// RGB. FFmpeg's own log is silenced: every failure becomes one ug::Error line.
#include "media/video.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "util/error.h"

namespace ug::media {

namespace {

// Demuxers we accept, by FFmpeg name. Image and audio-only demuxers stay out, so that a PNG or an
// MP3 passed as video is reported as such instead of becoming a one-frame "video"; playlist and
// concatenation formats stay out because they open further files.
constexpr const char* kContainers =
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpeg,mpegts,flv,ogg,asf";

std::string av_error(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

// What the AVIO callbacks read: a memory buffer, or a file read as needed.
struct Source {
  const uint8_t* data = nullptr;
  std::FILE* file = nullptr;
  int64_t size = 0;
  int64_t pos = 0;
};

int read_source(void* opaque, uint8_t* buf, int n) {
  auto* s = static_cast<Source*>(opaque);
  if (s->file) {
    const size_t got = std::fread(buf, 1, size_t(n), s->file);
    s->pos += int64_t(got);
    if (got == 0) return std::ferror(s->file) ? AVERROR(EIO) : AVERROR_EOF;
    return int(got);
  }
  const int64_t k = std::min<int64_t>(n, s->size - s->pos);
  if (k <= 0) return AVERROR_EOF;
  std::memcpy(buf, s->data + s->pos, size_t(k));
  s->pos += k;
  return int(k);
}

int64_t seek_source(void* opaque, int64_t offset, int whence) {
  auto* s = static_cast<Source*>(opaque);
  whence &= ~AVSEEK_FORCE;
  if (whence == AVSEEK_SIZE) return s->size;
  const int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s->pos : s->size;
  if (offset > std::numeric_limits<int64_t>::max() - base) return AVERROR(EINVAL);
  const int64_t target = std::min(base + offset, s->size);
  if (target < 0) return AVERROR(EINVAL);
  if (s->file && fseeko(s->file, off_t(target), SEEK_SET) != 0) return AVERROR(EIO);
  s->pos = target;
  return target;
}

// Nested opens (playlists, external references) are never followed.
int refuse_open(AVFormatContext*, AVIOContext**, const char*, int, AVDictionary**) {
  return AVERROR(EPERM);
}

struct Demuxer {
  Source src;
  AVIOContext* io = nullptr;
  AVFormatContext* fmt = nullptr;
  Demuxer() = default;
  Demuxer(const Demuxer&) = delete;
  Demuxer& operator=(const Demuxer&) = delete;
  ~Demuxer() {
    if (fmt) avformat_close_input(&fmt);
    if (io) {
      av_freep(&io->buffer);
      avio_context_free(&io);
    }
    if (src.file) std::fclose(src.file);
  }
};

struct CodecContext {
  AVCodecContext* ctx = nullptr;
  ~CodecContext() { avcodec_free_context(&ctx); }
};
struct Packet {
  AVPacket* p = av_packet_alloc();
  ~Packet() { av_packet_free(&p); }
};
struct Frame {
  AVFrame* f = av_frame_alloc();
  ~Frame() { av_frame_free(&f); }
};

// Where the bytes come from; opened once per pass.
struct Input {
  const std::string& name;
  const uint8_t* data = nullptr;
  size_t size = 0;
  const std::string* path = nullptr;
};

void open_demuxer(const Input& in, Demuxer& d) {
  av_log_set_level(AV_LOG_QUIET);
  if (in.path) {
    d.src.file = std::fopen(in.path->c_str(), "rb");
    if (!d.src.file) throw Error(in.name + ": cannot open video file");
    if (fseeko(d.src.file, 0, SEEK_END) != 0) throw Error(in.name + ": cannot read video file");
    d.src.size = int64_t(ftello(d.src.file));
    std::rewind(d.src.file);
  } else {
    d.src.data = in.data;
    d.src.size = int64_t(in.size);
  }
  if (d.src.size <= 0) throw Error(in.name + ": empty video file");
  constexpr int kBuffer = 1 << 16;
  auto* buf = static_cast<uint8_t*>(av_malloc(kBuffer));
  if (!buf) throw Error(in.name + ": out of memory");
  d.io = avio_alloc_context(buf, kBuffer, 0, &d.src, read_source, nullptr, seek_source);
  if (!d.io) {
    av_free(buf);
    throw Error(in.name + ": out of memory");
  }
  d.fmt = avformat_alloc_context();
  if (!d.fmt) throw Error(in.name + ": out of memory");
  d.fmt->pb = d.io;
  d.fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
  d.fmt->io_open = refuse_open;
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "format_whitelist", kContainers, 0);
  const int err = avformat_open_input(&d.fmt, nullptr, nullptr, &opts);
  av_dict_free(&opts);
  if (err < 0) {  // d.fmt was freed
    throw Error(in.name +
                ": not a video file in a supported container (MP4/MOV, MKV/WebM, AVI, MPEG, FLV, "
                "OGG, ASF), or its header is truncated: " +
                av_error(err));
  }
  const int info = avformat_find_stream_info(d.fmt, nullptr);
  if (info < 0) throw Error(in.name + ": corrupt video file: " + av_error(info));
}

int pick_video_stream(AVFormatContext* fmt) {
  auto usable = [&](int i) {
    const AVStream* st = fmt->streams[i];
    return st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
           !(st->disposition & AV_DISPOSITION_ATTACHED_PIC);
  };
  const int best = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (best >= 0 && usable(best)) return best;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    if (usable(int(i))) return int(i);
  }
  return -1;
}

void open_decoder(AVStream* st, CodecContext& c, const std::string& name, const char* what,
                  const char* hint = "") {
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec) {
    throw Error(name + ": no decoder for the " + what + " codec '" +
                avcodec_get_name(st->codecpar->codec_id) + "'" + hint);
  }
  c.ctx = avcodec_alloc_context3(codec);
  if (!c.ctx) throw Error(name + ": out of memory");
  int err = avcodec_parameters_to_context(c.ctx, st->codecpar);
  if (err >= 0) {
    c.ctx->pkt_timebase = st->time_base;
    err = avcodec_open2(c.ctx, codec, nullptr);
  }
  if (err < 0) {
    throw Error(name + ": cannot open the " + what + " decoder '" + codec->name +
                "': " + av_error(err) + hint);
  }
}

// Clockwise rotation in degrees the player applies (0, 90, 180, 270).
int display_rotation(const AVStream* st) {
  const uint8_t* m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr);
  if (!m) return 0;
  const double theta = -av_display_rotation_get(reinterpret_cast<const int32_t*>(m));
  if (std::isnan(theta)) return 0;
  int r = int(std::lround(theta / 90.0)) * 90 % 360;
  if (r < 0) r += 360;
  return r;
}

Image rotate(Image in, int clockwise) {
  // EXIF orientations: 6 = rotate 90 clockwise, 3 = 180, 8 = 90 counter-clockwise.
  if (clockwise == 90) return apply_exif_orientation(in, 6);
  if (clockwise == 180) return apply_exif_orientation(in, 3);
  if (clockwise == 270) return apply_exif_orientation(in, 8);
  return in;
}

struct RgbConverter {
  SwsContext* sws = nullptr;
  std::vector<uint8_t> buf;
  ~RgbConverter() { sws_freeContext(sws); }

  Image convert(const AVFrame* f, const std::string& name, const VideoLimits& limits) {
    const int w = f->width, h = f->height;
    if (w <= 0 || h <= 0) throw Error(name + ": video frame without a size");
    if (int64_t(w) * h > limits.max_pixels) {
      throw Error(name + ": video frames of " + std::to_string(w) + "x" + std::to_string(h) +
                  " exceed the pixel limit of " + std::to_string(limits.max_pixels));
    }
    sws = sws_getCachedContext(sws, w, h, AVPixelFormat(f->format), w, h, AV_PIX_FMT_RGB24,
                               SWS_BICUBIC, nullptr, nullptr, nullptr);
    if (!sws) {
      const char* pf = av_get_pix_fmt_name(AVPixelFormat(f->format));
      throw Error(name + ": unsupported video pixel format " + (pf ? pf : "?"));
    }
    // swscale may write whole SIMD blocks: give it an aligned, padded stride.
    const int stride = (w * 3 + 63) / 64 * 64;
    buf.resize(size_t(stride) * size_t(h) + 64);
    uint8_t* dst[4] = {buf.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {stride, 0, 0, 0};
    sws_scale(sws, f->data, f->linesize, 0, h, dst, dst_stride);
    Image img;
    img.width = w;
    img.height = h;
    img.rgb.resize(size_t(w) * size_t(h) * 3);
    for (int y = 0; y < h; ++y) {
      std::memcpy(&img.rgb[size_t(y) * w * 3], &buf[size_t(y) * stride], size_t(w) * 3);
    }
    return img;
  }
};

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", s);
  return buf;
}

// Decodes the audio track to mono float at its own rate (channels averaged, as for audio files).
struct AudioTrack {
  CodecContext dec;
  SwrContext* swr = nullptr;
  Frame frame;
  int rate = 0;
  int channels = 0;
  std::vector<float> mono;
  std::vector<float> interleaved;
  double max_seconds = 0;
  const std::string* name = nullptr;
  ~AudioTrack() { swr_free(&swr); }

  void take(AVFrame* f) {
    const int ch = f->ch_layout.nb_channels;
    if (ch <= 0 || ch > 64 || f->sample_rate <= 0 || f->sample_rate > 1'000'000) {
      throw Error(*name + ": unsupported audio track layout (" + std::to_string(ch) +
                  " channels, " + std::to_string(f->sample_rate) + " Hz)");
    }
    if (!swr) {
      rate = f->sample_rate;
      channels = ch;
      const int err =
          swr_alloc_set_opts2(&swr, &f->ch_layout, AV_SAMPLE_FMT_FLT, rate, &f->ch_layout,
                              AVSampleFormat(f->format), rate, 0, nullptr);
      if (err < 0 || swr_init(swr) < 0) {
        throw Error(*name + ": cannot convert the audio track's samples");
      }
    } else if (f->sample_rate != rate || ch != channels) {
      throw Error(*name + ": the audio track changes its sample rate or channels midway");
    }
    interleaved.resize(size_t(f->nb_samples) * size_t(ch));
    uint8_t* out[1] = {reinterpret_cast<uint8_t*>(interleaved.data())};
    const int got = swr_convert(swr, out, f->nb_samples,
                                const_cast<const uint8_t**>(f->extended_data), f->nb_samples);
    if (got < 0) throw Error(*name + ": audio track conversion failed");
    if (double(mono.size()) + got > max_seconds * rate) {
      throw Error(*name + ": the audio track is longer than the limit of " +
                  seconds_text(max_seconds) + " (--video-audio off ignores it)");
    }
    const float inv = 1.0f / float(ch);
    for (int i = 0; i < got; ++i) {
      float s = 0;
      for (int c = 0; c < ch; ++c) s += interleaved[size_t(i) * ch + c];
      mono.push_back(ch == 1 ? s : s * inv);
    }
  }

  void feed(const AVPacket* pkt) {  // null flushes the decoder
    const int err = avcodec_send_packet(dec.ctx, pkt);
    if (err < 0 && err != AVERROR_INVALIDDATA && err != AVERROR_EOF) {
      throw Error(*name + ": audio track decoding failed: " + av_error(err));
    }
    while (avcodec_receive_frame(dec.ctx, frame.f) >= 0) {
      take(frame.f);
      av_frame_unref(frame.f);
    }
  }
};

Video decode(const Input& in, const VideoOptions& options, const VideoLimits& limits) {
  const std::string& name = in.name;
  if (options.max_frames < 1 || options.max_frames > kVideoMaxFrames) {
    throw Error(name + ": frames per video must be between 1 and " +
                std::to_string(kVideoMaxFrames));
  }
  if (!(options.sample_fps >= 0) || options.sample_fps > 1000) {
    throw Error(name + ": frame sampling rate must be between 0 and 1000 per second");
  }
  // ---- pass 1: index the video packets, decode the audio track ----
  Demuxer d1;
  open_demuxer(in, d1);
  const int vi = pick_video_stream(d1.fmt);
  if (vi < 0) throw Error(name + ": the file has no video stream");
  AVStream* vst = d1.fmt->streams[vi];
  const AVRational tb = vst->time_base;
  if (tb.num <= 0 || tb.den <= 0) throw Error(name + ": video stream without a time base");
  const int64_t declared_pixels = int64_t(vst->codecpar->width) * vst->codecpar->height;
  if (declared_pixels > limits.max_pixels) {
    throw Error(name + ": video frames of " + std::to_string(vst->codecpar->width) + "x" +
                std::to_string(vst->codecpar->height) + " exceed the pixel limit of " +
                std::to_string(limits.max_pixels));
  }
  double declared = 0;  // seconds, from the container or stream header
  if (vst->duration > 0 && vst->duration != AV_NOPTS_VALUE) {
    declared = double(vst->duration) * av_q2d(tb);
  } else if (d1.fmt->duration > 0 && d1.fmt->duration != AV_NOPTS_VALUE) {
    declared = double(d1.fmt->duration) / AV_TIME_BASE;
  }
  if (declared > limits.max_seconds) {
    throw Error(name + ": video is " + seconds_text(declared) + " long, more than the limit of " +
                seconds_text(limits.max_seconds));
  }
  Video video;
  AVRational rate = vst->avg_frame_rate;
  if (rate.num <= 0 || rate.den <= 0) rate = vst->r_frame_rate;
  video.fps = rate.num > 0 && rate.den > 0 ? av_q2d(rate) : 0;

  AudioTrack audio;
  audio.name = &name;
  int ai = -1;
  if (options.audio) {
    ai = av_find_best_stream(d1.fmt, AVMEDIA_TYPE_AUDIO, -1, vi, nullptr, 0);
    if (ai >= 0) {
      open_decoder(d1.fmt->streams[ai], audio.dec, name, "audio",
                   " (--video-audio off ignores the audio track)");
      audio.max_seconds = limits.max_audio_seconds;
    }
  }
  std::vector<int64_t> pts;      // presentation times of the video frames (stream time base)
  std::vector<int64_t> key_pts;  // of the key frames
  int64_t packets = 0;
  bool missing_ts = false;
  {
    Packet pkt;
    if (!pkt.p) throw Error(name + ": out of memory");
    for (;;) {
      const int err = av_read_frame(d1.fmt, pkt.p);
      if (err == AVERROR_EOF) break;
      if (err < 0) throw Error(name + ": corrupt or truncated video data: " + av_error(err));
      if (pkt.p->stream_index == vi) {
        if (++packets > limits.max_stream_frames) {
          throw Error(name + ": the video has more than " +
                      std::to_string(limits.max_stream_frames) + " frames");
        }
        const int64_t ts = pkt.p->pts != AV_NOPTS_VALUE ? pkt.p->pts : pkt.p->dts;
        if (ts == AV_NOPTS_VALUE) {
          missing_ts = true;
        } else {
          pts.push_back(ts);
          if (pkt.p->flags & AV_PKT_FLAG_KEY) key_pts.push_back(ts);
        }
      } else if (pkt.p->stream_index == ai) {
        audio.feed(pkt.p);
      }
      av_packet_unref(pkt.p);
    }
  }
  if (packets == 0) throw Error(name + ": the video stream holds no frames");
  if (ai >= 0) {
    audio.feed(nullptr);
    if (audio.mono.empty()) {
      throw Error(name + ": the audio track holds no decodable samples (use --video-audio off)");
    }
    video.audio.source_rate = audio.rate;
    video.audio.source_channels = audio.channels;
    video.audio.samples = resample_to_16k(audio.mono, audio.rate);
    video.has_audio = !video.audio.samples.empty();
  }

  // ---- which frames ----
  const double frame_dur = video.fps > 0 ? 1.0 / video.fps : 0;
  std::sort(pts.begin(), pts.end());
  std::sort(key_pts.begin(), key_pts.end());
  if (missing_ts) {
    pts.clear();  // sample by frame count instead of time
    key_pts.clear();
  }
  video.total_frames = missing_ts ? packets : int64_t(pts.size());
  const int64_t start = pts.empty() ? 0 : pts.front();
  auto pts_seconds = [&](int64_t ts) { return double(ts - start) * av_q2d(tb); };
  const double indexed =
      pts.empty() ? double(packets) * frame_dur : pts_seconds(pts.back()) + frame_dur;
  video.duration = std::max(indexed, 0.0);
  if (video.duration > limits.max_seconds) {
    throw Error(name + ": video is " + seconds_text(video.duration) +
                " long, more than the limit of " + seconds_text(limits.max_seconds));
  }
  // A header that promises much more than the data holds: the file was cut short.
  if (declared > 0 && indexed > 0 && indexed < 0.9 * declared - 2 * frame_dur) {
    throw Error(name + ": truncated video: the header says " + seconds_text(declared) +
                " but the data ends at " + seconds_text(indexed));
  }
  const std::vector<int64_t> indices = sample_frame_indices(
      video.total_frames,
      sample_frame_count(video.total_frames, video.fps, options.sample_fps, options.max_frames));
  std::vector<int64_t> targets;  // pts (or frame ordinals when timestamps are missing)
  for (int64_t i : indices) targets.push_back(missing_ts ? i : pts[size_t(i)]);

  // ---- pass 2: decode the sampled frames ----
  Demuxer d2;
  open_demuxer(in, d2);
  AVStream* vst2 = d2.fmt->streams[vi];
  for (unsigned i = 0; i < d2.fmt->nb_streams; ++i) {
    if (int(i) != vi) d2.fmt->streams[i]->discard = AVDISCARD_ALL;
  }
  CodecContext vdec;
  open_decoder(vst2, vdec, name, "video");
  const int rotation = display_rotation(vst2);
  RgbConverter rgb;
  Packet pkt;
  Frame frame;
  if (!pkt.p || !frame.f) throw Error(name + ": out of memory");
  size_t next = 0;
  int64_t ordinal = 0;
  int64_t fed_up_to = std::numeric_limits<int64_t>::min();  // highest pts sent to the decoder
  size_t seeked_for = SIZE_MAX;
  Image last_image;
  double last_seconds = -1;
  int bad_packets = 0;
  auto frame_seconds = [&](size_t k) {
    return missing_ts ? double(targets[k]) * frame_dur : pts_seconds(targets[k]);
  };
  auto take_frame = [&](const AVFrame* f) {
    const int64_t ts = f->best_effort_timestamp;
    const int64_t pos = missing_ts ? ordinal : ts;
    ++ordinal;
    if (!missing_ts && ts == AV_NOPTS_VALUE) return;
    if (next >= targets.size() || pos < targets[next]) return;
    last_image = rotate(rgb.convert(f, name, limits), rotation);
    last_seconds = missing_ts ? double(pos) * frame_dur : pts_seconds(ts);
    while (next < targets.size() && pos >= targets[next]) {
      video.frames.push_back({indices[next], frame_seconds(next), last_image});
      ++next;
    }
  };
  auto drain = [&]() {
    int err;
    while ((err = avcodec_receive_frame(vdec.ctx, frame.f)) >= 0) {
      take_frame(frame.f);
      av_frame_unref(frame.f);
    }
    if (err != AVERROR(EAGAIN) && err != AVERROR_EOF) ++bad_packets;
  };
  while (next < targets.size()) {
    if (!missing_ts && seeked_for != next) {
      seeked_for = next;
      // The key frame at or before the target: seek there unless decoding on reaches it sooner.
      auto k = std::upper_bound(key_pts.begin(), key_pts.end(), targets[next]);
      if (k != key_pts.begin() && *std::prev(k) > fed_up_to) {
        if (av_seek_frame(d2.fmt, vi, *std::prev(k), AVSEEK_FLAG_BACKWARD) >= 0) {
          avcodec_flush_buffers(vdec.ctx);
          fed_up_to = std::numeric_limits<int64_t>::min();
        }
      }
    }
    const int err = av_read_frame(d2.fmt, pkt.p);
    if (err == AVERROR_EOF) {
      avcodec_send_packet(vdec.ctx, nullptr);
      drain();
      break;
    }
    if (err < 0) throw Error(name + ": corrupt or truncated video data: " + av_error(err));
    if (pkt.p->stream_index == vi) {
      const int64_t ts = pkt.p->pts != AV_NOPTS_VALUE ? pkt.p->pts : pkt.p->dts;
      if (ts != AV_NOPTS_VALUE) fed_up_to = std::max(fed_up_to, ts);
      const int sent = avcodec_send_packet(vdec.ctx, pkt.p);
      if (sent < 0 && sent != AVERROR(EAGAIN)) ++bad_packets;
      drain();
    }
    av_packet_unref(pkt.p);
  }
  if (next < targets.size()) {
    // The stream ended before a sampled frame. Within a frame or two of the end (timestamps that
    // overshoot slightly) the last decoded frame stands in; otherwise the data is missing.
    const double want = frame_seconds(next);
    if (last_seconds < 0) {
      throw Error(name + ": no video frame could be decoded (corrupt file?)");
    }
    if (want - last_seconds > std::max(2 * frame_dur, 0.1)) {
      throw Error(name + ": video frames after " + seconds_text(last_seconds) +
                  " could not be decoded (truncated or corrupt file)");
    }
    for (; next < targets.size(); ++next) {
      video.frames.push_back({indices[next], frame_seconds(next), last_image});
    }
  }
  (void)bad_packets;  // damaged packets are skipped, as players do; missing frames are errors
  return video;
}

}  // namespace

std::vector<int64_t> sample_frame_indices(int64_t total, int max_frames) {
  std::vector<int64_t> out;
  if (total <= 0 || max_frames <= 0) return out;
  const int64_t n = std::min<int64_t>(max_frames, total);
  const double step = double(total) / double(n);
  for (int64_t i = 0; i < n; ++i) {
    out.push_back(std::min<int64_t>(total - 1, int64_t(double(i) * step)));
  }
  return out;
}

int sample_frame_count(int64_t total, double video_fps, double sample_fps, int max_frames) {
  if (!(sample_fps > 0) || !(video_fps > 0) || total <= 0) return max_frames;
  const double n = double(total) / video_fps * sample_fps;
  if (!(n < double(max_frames))) return max_frames;
  return std::max(1, int(n));
}

std::string format_timestamp(double seconds) {
  const int64_t s = seconds > 0 ? int64_t(seconds) : 0;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02lld:%02lld", static_cast<long long>(s / 60),
                static_cast<long long>(s % 60));
  return buf;
}

Video decode_video(const uint8_t* data, size_t size, const std::string& name,
                   const VideoOptions& options, const VideoLimits& limits) {
  if (size == 0) throw Error(name + ": empty video file");
  return decode(Input{name, data, size, nullptr}, options, limits);
}

Video load_video(const std::string& path, const VideoOptions& options, const VideoLimits& limits) {
  return decode(Input{path, nullptr, 0, &path}, options, limits);
}

}  // namespace ug::media
