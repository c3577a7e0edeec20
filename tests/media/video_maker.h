// Writes small test videos with the libavcodec encoders of Debian's FFmpeg (MPEG-4 part 2, MJPEG;
// PCM or AAC audio) so the video tests need no binary fixtures. Frame i is one solid colour that
// encodes its index (see frame_colour), and the audio is a 440 Hz sine of amplitude 0.5, the same
// on every channel, so tests can check which frames were sampled and what the audio track holds.
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libswscale/swscale.h>
}

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace ug::test {

struct TestVideo {
  const char* container = "avi";  // FFmpeg muxer name: avi, mp4, matroska
  AVCodecID video_codec = AV_CODEC_ID_MPEG4;
  int width = 96, height = 64;
  int fps = 4;
  int frames = 40;
  int b_frames = 0;
  int gop = 10;
  AVCodecID audio_codec = AV_CODEC_ID_NONE;  // AV_CODEC_ID_PCM_S16LE or AV_CODEC_ID_AAC
  int audio_rate = 44100;
  int audio_channels = 2;
  bool with_video = true;
  int rotation_cw = 0;  // display matrix asking players to rotate clockwise by this much
};

// Red channel 6*i (i < 42), green 255 - 6*i, blue 128.
inline void frame_colour(int i, uint8_t rgb[3]) {
  rgb[0] = uint8_t(6 * i);
  rgb[1] = uint8_t(255 - 6 * i);
  rgb[2] = 128;
}

namespace video_maker_detail {

inline void check(int err, const char* what) {
  if (err < 0) {
    char buf[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(err, buf, sizeof(buf));
    throw std::runtime_error(std::string("write_test_video: ") + what + ": " + buf);
  }
}

struct Out {
  AVFormatContext* oc = nullptr;
  ~Out() {
    if (oc) {
      if (oc->pb) avio_closep(&oc->pb);
      avformat_free_context(oc);
    }
  }
};

inline void write_packets(AVFormatContext* oc, AVCodecContext* enc, AVStream* st,
                          const AVFrame* frame) {
  check(avcodec_send_frame(enc, frame), "send frame");
  AVPacket* pkt = av_packet_alloc();
  for (;;) {
    const int err = avcodec_receive_packet(enc, pkt);
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) break;
    check(err, "receive packet");
    av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
    pkt->stream_index = st->index;
    check(av_interleaved_write_frame(oc, pkt), "write packet");
  }
  av_packet_free(&pkt);
}

}  // namespace video_maker_detail

inline void write_test_video(const std::string& path, const TestVideo& spec) {
  using namespace video_maker_detail;
  av_log_set_level(AV_LOG_ERROR);  // no encoder chatter in test output
  Out out;
  check(avformat_alloc_output_context2(&out.oc, nullptr, spec.container, path.c_str()), "muxer");
  AVFormatContext* oc = out.oc;
  AVCodecContext* venc = nullptr;
  AVCodecContext* aenc = nullptr;
  AVStream* vst = nullptr;
  AVStream* ast = nullptr;
  if (spec.with_video) {
    const AVCodec* vc = avcodec_find_encoder(spec.video_codec);
    if (!vc) throw std::runtime_error("write_test_video: no video encoder");
    vst = avformat_new_stream(oc, nullptr);
    venc = avcodec_alloc_context3(vc);
    venc->width = spec.width;
    venc->height = spec.height;
    venc->time_base = AVRational{1, spec.fps};
    venc->framerate = AVRational{spec.fps, 1};
    venc->pix_fmt =
        spec.video_codec == AV_CODEC_ID_MJPEG ? AV_PIX_FMT_YUVJ420P : AV_PIX_FMT_YUV420P;
    venc->gop_size = spec.gop;
    venc->max_b_frames = spec.b_frames;
    venc->flags |= AV_CODEC_FLAG_QSCALE;
    venc->global_quality = FF_QP2LAMBDA * 2;
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) venc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    check(avcodec_open2(venc, vc, nullptr), "open video encoder");
    check(avcodec_parameters_from_context(vst->codecpar, venc), "video parameters");
    vst->time_base = venc->time_base;
    if (spec.rotation_cw) {
      auto* m = reinterpret_cast<int32_t*>(
          av_stream_new_side_data(vst, AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(int32_t)));
      av_display_rotation_set(m, -double(spec.rotation_cw));
    }
  }
  if (spec.audio_codec != AV_CODEC_ID_NONE) {
    const AVCodec* ac = avcodec_find_encoder(spec.audio_codec);
    if (!ac) throw std::runtime_error("write_test_video: no audio encoder");
    ast = avformat_new_stream(oc, nullptr);
    aenc = avcodec_alloc_context3(ac);
    aenc->sample_rate = spec.audio_rate;
    av_channel_layout_default(&aenc->ch_layout, spec.audio_channels);
    aenc->sample_fmt = spec.audio_codec == AV_CODEC_ID_AAC ? AV_SAMPLE_FMT_FLTP : AV_SAMPLE_FMT_S16;
    aenc->bit_rate = 128000;
    aenc->time_base = AVRational{1, spec.audio_rate};
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) aenc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    check(avcodec_open2(aenc, ac, nullptr), "open audio encoder");
    check(avcodec_parameters_from_context(ast->codecpar, aenc), "audio parameters");
    ast->time_base = aenc->time_base;
  }
  check(avio_open(&oc->pb, path.c_str(), AVIO_FLAG_WRITE), "open output");
  check(avformat_write_header(oc, nullptr), "header");

  AVFrame* frame = av_frame_alloc();
  if (venc) {
    frame->format = venc->pix_fmt;
    frame->width = spec.width;
    frame->height = spec.height;
    check(av_frame_get_buffer(frame, 0), "frame buffer");
    SwsContext* sws =
        sws_getContext(spec.width, spec.height, AV_PIX_FMT_RGB24, spec.width, spec.height,
                       venc->pix_fmt, SWS_BICUBIC, nullptr, nullptr, nullptr);
    std::vector<uint8_t> rgb(size_t(spec.width) * spec.height * 3 + 64);
    for (int i = 0; i < spec.frames; ++i) {
      uint8_t c[3];
      frame_colour(i, c);
      for (size_t p = 0; p + 3 <= size_t(spec.width) * spec.height * 3; p += 3) {
        rgb[p] = c[0];
        rgb[p + 1] = c[1];
        rgb[p + 2] = c[2];
      }
      check(av_frame_make_writable(frame), "writable");
      const uint8_t* src[1] = {rgb.data()};
      const int src_stride[1] = {spec.width * 3};
      sws_scale(sws, src, src_stride, 0, spec.height, frame->data, frame->linesize);
      frame->pts = i;
      write_packets(oc, venc, vst, frame);
    }
    sws_freeContext(sws);
    write_packets(oc, venc, vst, nullptr);
  }
  if (aenc) {
    const int chunk = aenc->frame_size > 0 ? aenc->frame_size : 1024;
    const int64_t total = int64_t(spec.audio_rate) * spec.frames / spec.fps;
    for (int64_t done = 0; done < total; done += chunk) {
      av_frame_unref(frame);
      frame->format = aenc->sample_fmt;
      frame->sample_rate = spec.audio_rate;
      check(av_channel_layout_copy(&frame->ch_layout, &aenc->ch_layout), "layout");
      frame->nb_samples = int(std::min<int64_t>(chunk, total - done));
      if (aenc->frame_size > 0) frame->nb_samples = chunk;  // AAC wants full frames
      check(av_frame_get_buffer(frame, 0), "audio buffer");
      for (int i = 0; i < frame->nb_samples; ++i) {
        const double v =
            0.5 * std::sin(2 * M_PI * 440.0 * double(done + i) / double(spec.audio_rate));
        for (int c = 0; c < spec.audio_channels; ++c) {
          if (aenc->sample_fmt == AV_SAMPLE_FMT_FLTP) {
            reinterpret_cast<float*>(frame->extended_data[c])[i] = float(v);
          } else {
            reinterpret_cast<int16_t*>(frame->data[0])[i * spec.audio_channels + c] =
                int16_t(std::lround(v * 32767));
          }
        }
      }
      frame->pts = done;
      write_packets(oc, aenc, ast, frame);
    }
    write_packets(oc, aenc, ast, nullptr);
  }
  av_frame_free(&frame);
  check(av_write_trailer(oc), "trailer");
  avcodec_free_context(&venc);
  avcodec_free_context(&aenc);
}

}  // namespace ug::test
