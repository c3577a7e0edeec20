// Media benchmark: preprocessing (decode + resize + patches / decode + downmix + resample) and
// embedding of an image and an audio file, next to the prompt-processing time of the text model for
// the same number of prompt positions (the embedders should cost a few percent of that).
//
//   media_bench --make-inputs DIR                 writes DIR/photo-12mp.jpg (4000x3000) and
//                                                 DIR/speech-30s.mp3 (30 s, 44.1 kHz stereo)
//   media_bench --mmproj P [-m MODEL] [--image F] [--audio F] [--image-tokens 280] [-t N] [-r 1]
//
// Times are wall-clock milliseconds and process CPU milliseconds (on a shared machine the CPU time
// is the steadier figure). With -m, one prompt-processing run per media item (-r repeats it).
#include <sndfile.h>

#include <jpeglib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "media/audio.h"
#include "media/image.h"
#include "model/gemma4/decoder.h"
#include "model/gemma4/model.h"
#include "model/gemma4/projector.h"
#include "runtime/multimodal.h"
#include "util/error.h"

namespace {

using namespace ug;

struct Stopwatch {
  std::chrono::steady_clock::time_point wall = std::chrono::steady_clock::now();
  double cpu = cpu_now();
  static double cpu_now() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
  }
  double wall_ms() const {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall)
        .count();
  }
  double cpu_ms() const { return (cpu_now() - cpu) * 1e3; }
};

// A 4000x3000 photo-like picture: smooth colour fields, edges and sensor-like noise, quality 90.
void write_jpeg(const std::string& path) {
  const int w = 4000, h = 3000;
  std::vector<uint8_t> row(size_t(w) * 3);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(path + ": cannot write");
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  uint32_t x = 12345;
  while (c.next_scanline < c.image_height) {
    const double y = c.next_scanline;
    for (int i = 0; i < w; ++i) {
      x = x * 1664525u + 1013904223u;
      const double noise = double(x >> 24) / 255.0 * 12 - 6;
      const double base = 128 + 60 * std::sin(i / 310.0) * std::cos(y / 270.0) +
                          40 * ((int(i / 150.0 + y / 210.0) % 2) ? 1 : -1);
      row[size_t(i) * 3] = uint8_t(std::clamp(base + noise, 0.0, 255.0));
      row[size_t(i) * 3 + 1] =
          uint8_t(std::clamp(base * 0.8 + 30 * std::sin(y / 97.0) + noise, 0.0, 255.0));
      row[size_t(i) * 3 + 2] = uint8_t(std::clamp(255 - base + noise, 0.0, 255.0));
    }
    JSAMPROW r = row.data();
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

// 30 s of 44.1 kHz stereo MP3 through libsndfile's LAME-backed writer: a voiced-like signal
// (harmonics with a slow pitch glide and syllable envelope) plus a little noise.
void write_mp3(const std::string& path) {
  SF_INFO info{};
  info.samplerate = 44100;
  info.channels = 2;
  info.format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
  SNDFILE* sf = sf_open(path.c_str(), SFM_WRITE, &info);
  if (!sf) throw Error(path + ": libsndfile cannot write MP3: " + sf_strerror(nullptr));
  const int n = 30 * 44100;
  std::vector<float> buf(size_t(n) * 2);
  uint32_t x = 99;
  double phase = 0;
  for (int i = 0; i < n; ++i) {
    const double t = i / 44100.0;
    const double f0 = 140 + 30 * std::sin(2 * M_PI * 0.3 * t);
    phase += 2 * M_PI * f0 / 44100.0;
    const double env = 0.5 + 0.5 * std::sin(2 * M_PI * 3.5 * t);
    double s = 0;
    for (int k = 1; k <= 8; ++k) s += std::sin(k * phase) / k;
    x = x * 1664525u + 1013904223u;
    const double noise = (double(x >> 8) / double(1 << 24) - 0.5) * 0.02;
    buf[size_t(i) * 2] = float(0.25 * env * s + noise);
    buf[size_t(i) * 2 + 1] = float(0.22 * env * s - noise);
  }
  sf_writef_float(sf, buf.data(), n);
  sf_close(sf);
}

std::string arg_value(int argc, char** argv, const char* name, const std::string& def = "") {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == name) return argv[i + 1];
  }
  return def;
}

struct Row {
  std::string what;
  int tokens = 0;
  double pre_wall = 0, pre_cpu = 0, emb_wall = 0, emb_cpu = 0;
  double pp_wall = -1, pp_cpu = -1;
};

// One prompt-processing run over the media item as the decoder sees it: <bos>, the soft tokens
// (image: one bidirectional block), one text token.
void time_prompt(const gemma4::Model& model, const MediaEmbedding& m, bool image, int reps,
                 ThreadPool& pool, Row& row) {
  gemma4::Input in;
  in.tokens.push_back(2);
  in.tokens.insert(in.tokens.end(), size_t(m.n_tokens), -1);
  in.tokens.push_back(107);
  in.embeddings = m.rows;
  if (image) {
    in.block.assign(in.tokens.size(), 0);
    in.block.front() = in.block.back() = -1;
  }
  gemma4::DecoderOptions o;
  o.n_ctx = int(in.tokens.size()) + 16;
  o.n_ubatch = 512;  // as run/chat (an image block is never split across chunks)
  gemma4::Decoder decoder(model, o, pool);
  gemma4::Output out;
  decoder.eval_tokens({2}, gemma4::Outputs::kLast, &out);  // touch the weights once
  double best_wall = 1e300, best_cpu = 1e300;
  for (int r = 0; r < reps; ++r) {
    decoder.cache().clear();
    Stopwatch sw;
    decoder.eval(in, gemma4::Outputs::kLast, &out);
    best_wall = std::min(best_wall, sw.wall_ms());
    best_cpu = std::min(best_cpu, sw.cpu_ms());
  }
  row.pp_wall = best_wall;
  row.pp_cpu = best_cpu;
}

int run(int argc, char** argv) {
  const std::string make = arg_value(argc, argv, "--make-inputs");
  if (!make.empty()) {
    std::filesystem::create_directories(make);
    write_jpeg(make + "/photo-12mp.jpg");
    write_mp3(make + "/speech-30s.mp3");
    std::printf("wrote %s/photo-12mp.jpg and %s/speech-30s.mp3\n", make.c_str(), make.c_str());
    return 0;
  }
  const std::string mmproj = arg_value(argc, argv, "--mmproj");
  const std::string model_path = arg_value(argc, argv, "-m");
  const std::string image = arg_value(argc, argv, "--image");
  const std::string audio = arg_value(argc, argv, "--audio");
  const int budget = std::stoi(arg_value(argc, argv, "--image-tokens", "280"));
  const int threads = std::stoi(arg_value(argc, argv, "-t", "2"));
  const int reps = std::stoi(arg_value(argc, argv, "-r", "1"));
  if (mmproj.empty() || (image.empty() && audio.empty())) {
    std::fprintf(stderr,
                 "usage: media_bench --mmproj P [-m MODEL] [--image F] [--audio F] "
                 "[--image-tokens 280] [-t 2] [-r 1]\n       media_bench --make-inputs DIR\n");
    return 2;
  }
  ThreadPool pool(threads);
  std::unique_ptr<gemma4::Model> model;
  int n_embd = 0;
  if (!model_path.empty()) {
    model = gemma4::load_model(model_path);
    n_embd = model->config.n_embd;
  } else {
    n_embd = 3840;
  }
  const auto projector = gemma4::load_projector(mmproj, n_embd);
  std::vector<Row> rows;
  if (!image.empty()) {
    Row r;
    Stopwatch pre;
    const media::Image img = media::load_image(image);
    const media::Patches p = media::preprocess_image(img, budget);
    r.pre_wall = pre.wall_ms();
    r.pre_cpu = pre.cpu_ms();
    Stopwatch emb;
    const MediaEmbedding m = embed_patches(*projector, p.values, p.pos_x, p.pos_y, pool);
    r.emb_wall = emb.wall_ms();
    r.emb_cpu = emb.cpu_ms();
    r.what = std::filesystem::path(image).filename().string() + " (" + std::to_string(img.width) +
             "x" + std::to_string(img.height) + " -> " + std::to_string(p.cols * 48) + "x" +
             std::to_string(p.rows * 48) + ")";
    r.tokens = m.n_tokens;
    if (model) time_prompt(*model, m, true, reps, pool, r);
    rows.push_back(r);
  }
  if (!audio.empty()) {
    Row r;
    Stopwatch pre;
    const media::Audio a = media::load_audio(audio);
    r.pre_wall = pre.wall_ms();
    r.pre_cpu = pre.cpu_ms();
    Stopwatch emb;
    const MediaEmbedding m = embed_samples(*projector, a.samples, pool);
    r.emb_wall = emb.wall_ms();
    r.emb_cpu = emb.cpu_ms();
    char buf[96];
    std::snprintf(buf, sizeof(buf), " (%.1f s, %d Hz, %d ch)",
                  double(a.samples.size()) / media::kAudioSampleRate, a.source_rate,
                  a.source_channels);
    r.what = std::filesystem::path(audio).filename().string() + buf;
    r.tokens = m.n_tokens;
    if (model) time_prompt(*model, m, false, reps, pool, r);
    rows.push_back(r);
  }
  std::printf("threads %d; ms as wall / process CPU\n", threads);
  std::printf(
      "| media | soft tokens | preprocess ms | embed ms | media total ms | pp ms (%s) | "
      "media / pp |\n",
      model ? std::filesystem::path(model_path).filename().c_str() : "no -m");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (const Row& r : rows) {
    const double tw = r.pre_wall + r.emb_wall, tc = r.pre_cpu + r.emb_cpu;
    std::printf("| %s | %d | %.0f / %.0f | %.0f / %.0f | %.0f / %.0f |", r.what.c_str(), r.tokens,
                r.pre_wall, r.pre_cpu, r.emb_wall, r.emb_cpu, tw, tc);
    if (r.pp_wall >= 0) {
      std::printf(" %.0f / %.0f (%d positions) | %.2f %% / %.2f %% |\n", r.pp_wall, r.pp_cpu,
                  r.tokens + 2, 100 * tw / r.pp_wall, 100 * tc / r.pp_cpu);
    } else {
      std::printf(" - | - |\n");
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "media_bench: %s\n", e.what());
    return 2;
  }
}
