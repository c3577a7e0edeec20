// Video decoding for the Gemma 4 video path (spec §2.5, §12.7) with the FFmpeg libraries: picks the
// best video stream, samples up to 32 frames uniformly over the clip (the reference processor's
// `arange(0, total, total / n)` rule on the frame index), decodes them to 8-bit RGB (display
// rotation applied) and, when asked, decodes the best audio track to mono 16 kHz like any other
// audio. Reads through an in-memory or file-backed AVIO context with every nested open refused, and
// accepts only common video containers (MP4/MOV, Matroska/WebM, AVI, MPEG-PS/TS, FLV, OGG, ASF).
// Knows nothing of the model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "media/audio.h"
#include "media/image.h"

namespace ug::media {

constexpr int kVideoMaxFrames = 32;    // the reference processor's default num_frames
constexpr int kVideoFrameBudget = 70;  // soft tokens per frame (video processor default)

struct VideoLimits {
  double max_seconds = 3 * 3600;          // longer clips are refused
  int64_t max_stream_frames = 1'000'000;  // frames listed by the container (index memory)
  int64_t max_pixels = int64_t(1) << 26;  // per frame, checked before decoding
  double max_audio_seconds = 3 * 3600;    // audio track decoding stops with an error beyond this
};

struct VideoOptions {
  int max_frames = kVideoMaxFrames;  // 1..32; fewer when the clip has fewer frames
  bool audio = true;                 // decode the audio track, when there is one
  // > 0: sample this many frames per second of video instead (the reference processor's `fps`:
  // n = int(total / video_fps * sample_fps)), still at most max_frames and at least 1.
  double sample_fps = 0;
};

struct VideoFrame {
  int64_t index = 0;   // frame number in presentation order
  double seconds = 0;  // presentation time from the start of the stream
  Image image;         // RGB, display rotation applied
};

struct Video {
  int64_t total_frames = 0;  // frames in the stream
  double duration = 0;       // seconds
  double fps = 0;            // average frame rate (0 when unknown)
  std::vector<VideoFrame> frames;
  bool has_audio = false;  // an audio track was decoded (options.audio and the file has one)
  Audio audio;             // mono 16 kHz when has_audio
};

// The reference sampler: indices int(i * total / n) for i < n, n = min(max_frames, total).
std::vector<int64_t> sample_frame_indices(int64_t total, int max_frames);
// How many frames to sample: max_frames, or with sample_fps > 0 the reference's
// int(total / video_fps * sample_fps) clamped to 1..max_frames (max_frames when video_fps is
// unknown).
int sample_frame_count(int64_t total, double video_fps, double sample_fps, int max_frames);
// "mm:ss" with integer minutes and seconds, zero-padded (spec §2.5); minutes may exceed 99.
std::string format_timestamp(double seconds);

// Decodes a video held in memory. `name` is used in error messages. Throws ug::Error with one line
// on bad input (not a video container, no video stream, truncated or corrupt data, limits).
Video decode_video(const uint8_t* data, size_t size, const std::string& name,
                   const VideoOptions& options = {}, const VideoLimits& limits = {});
// Same, reading the file as needed (it is not loaded whole).
Video load_video(const std::string& path, const VideoOptions& options = {},
                 const VideoLimits& limits = {});

}  // namespace ug::media
