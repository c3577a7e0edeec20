#include "runtime/oracle_check_mm.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "media/audio.h"
#include "media/image.h"
#include "media/video.h"
#include "model/gemma4/decoder.h"
#include "model/gemma4/projector.h"
#include "runtime/multimodal.h"
#include "runtime/oracle_files.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace ug {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kTextModel = "models/tiny-a/gemma4-tiny-a-f32.gguf";
constexpr const char* kProjector = "mm/model/mmproj-gemma4-tiny-a-f32.gguf";

json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw Error(p.string() + ": cannot open");
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) throw Error(p.string() + ": not valid JSON");
  return j;
}

// The multimodal pack's reference files hold exactly the expected values.
std::vector<float> read_f32(const fs::path& p, size_t expected) {
  return read_reference_f32(p, expected, /*exact=*/true);
}

fs::path root_of(const fs::path& file) {
  for (fs::path p = file.parent_path(); !p.empty(); p = p.parent_path()) {
    if (fs::exists(p / "models") && fs::exists(p / "mm")) return p;
    if (p == p.parent_path()) break;
  }
  return file.parent_path().parent_path();
}

class Runner {
 public:
  Runner(const fs::path& root, const OracleOptions& options, std::ostream& out, OracleSummary* s)
      : root_(root),
        options_(options),
        out_(out),
        summary_(s),
        pool_(options.n_threads > 0 ? options.n_threads
                                    : int(std::max(1u, std::thread::hardware_concurrency()))) {}

  void report(bool ok, const std::string& name, const std::string& detail) {
    out_ << (ok ? "PASS " : "FAIL ") << name << ": " << detail << "\n";
    out_.flush();
    (ok ? summary_->passed : summary_->failed)++;
  }
  void skip(const std::string& name, const std::string& why) {
    out_ << "SKIP " << name << ": " << why << "\n";
    ++summary_->skipped;
  }

  const gemma4::Projector& projector(int n_embd) {
    if (!projector_) projector_ = gemma4::load_projector((root_ / kProjector).string(), n_embd);
    return *projector_;
  }

  // ---- vision/vision_preprocess.json ----
  void vision_preprocess(const fs::path& file) {
    const json j = read_json(file);
    const fs::path dir = file.parent_path();
    for (const auto& [name, info] : j.at("images").items()) {
      media::Image img;
      try {
        img = media::load_image((dir / info.at("file").get<std::string>()).string());
      } catch (const Error& e) {
        report(false, "vision/" + name, e.what());
        continue;
      }
      uint64_t sum = 0;
      for (uint8_t v : img.rgb) sum += v;
      const bool decoded_ok = img.height == info.at("height").get<int>() &&
                              img.width == info.at("width").get<int>() &&
                              sum == info.at("decoded_rgb_u8").at("sum").get<uint64_t>();
      for (const auto& [budget_s, b] : info.at("budgets").items()) {
        const std::string case_name = "vision/" + name + "/b" + budget_s;
        const media::ResizeTarget t =
            media::target_size(img.height, img.width, std::stoi(budget_s));
        const json& ref = b.at("hf_float");
        bool ok = decoded_ok && t.height == b.at("target_hw")[0].get<int>() &&
                  t.width == b.at("target_hw")[1].get<int>() &&
                  t.tokens() == b.at("n_tokens").get<int>();
        char buf[320];
        if (!ok) {
          std::snprintf(buf, sizeof buf, "decoded %dx%d sum %llu, target %dx%d (%d tokens) FAIL",
                        img.height, img.width, (unsigned long long)sum, t.height, t.width,
                        t.tokens());
          report(false, case_name, buf);
          continue;
        }
        const media::Image resized = media::resize_bicubic_aa(img, t.height, t.width);
        const media::Patches p = media::extract_patches(resized);
        double s = 0;
        for (float v : p.values) s += v;
        const double sum_rel =
            std::fabs(s - ref.at("sum").get<double>()) / ref.at("sum").get<double>();
        const auto first16 = ref.at("patch0_first16_hwc").get<std::vector<float>>();
        double first16_max = 0;
        for (size_t i = 0; i < first16.size(); ++i) {
          first16_max = std::max(first16_max, std::fabs(double(p.values[i]) - first16[i]));
        }
        // Tolerances of README-multimodal §6: sum rel 1e-5, patch order exact (one tie allowed).
        ok = sum_rel <= 1e-5 && first16_max <= 1.0 / 255 + 1e-7 &&
             p.pos_x.back() == ref.at("patch_last_pos_xy")[0].get<int>() &&
             p.pos_y.back() == ref.at("patch_last_pos_xy")[1].get<int>();
        std::string pixels;
        if (ref.contains("png_u8")) {
          const media::Image want =
              media::load_image((dir / ref["png_u8"].get<std::string>()).string());
          size_t differ = 0;
          int max_d = 0;
          for (size_t i = 0; i < want.rgb.size() && i < resized.rgb.size(); ++i) {
            const int d = std::abs(int(want.rgb[i]) - int(resized.rgb[i]));
            differ += d != 0;
            max_d = std::max(max_d, d);
          }
          const double frac = double(differ) / double(std::max<size_t>(1, want.rgb.size()));
          const bool px_ok = want.rgb.size() == resized.rgb.size() && max_d <= 1 && frac <= 1e-3;
          ok = ok && px_ok;
          std::snprintf(buf, sizeof buf, " | pixels: %.4f%% differ, max %d level%s", frac * 100,
                        max_d, px_ok ? "" : " FAIL");
          pixels = buf;
        }
        std::snprintf(buf, sizeof buf, "%dx%d, %d tokens, sum rel %.1e, patch0 max %.1e", t.height,
                      t.width, t.tokens(), sum_rel, first16_max);
        report(ok, case_name, buf + pixels);
      }
    }
  }

  // ---- vision/embedder/vision_embedder.json ----
  void vision_embedder(const fs::path& file) {
    const json j = read_json(file);
    const fs::path vision_dir = file.parent_path().parent_path();
    for (const auto& [name, c] : j.at("cases").items()) {
      const std::string case_name = "vision-embedder/" + name;
      const int n = c.at("embd_shape")[0].get<int>();
      const int n_embd = c.at("embd_shape")[1].get<int>();
      const media::Image img =
          media::load_image((vision_dir / c.at("input_png").get<std::string>()).string());
      const media::Patches p = media::extract_patches(img);
      const MediaEmbedding m = embed_patches(projector(n_embd), p.values, p.pos_x, p.pos_y, pool_);
      if (m.n_tokens != n) {
        report(false, case_name,
               std::to_string(m.n_tokens) + " tokens, expected " + std::to_string(n));
        continue;
      }
      const auto ref =
          read_f32(vision_dir / c.at("embd_numpy_f32").get<std::string>(), size_t(n) * n_embd);
      const OracleDiff d = oracle_diff(m.rows.data(), ref.data(), ref.size());
      const bool ok = d.max_abs <= 5e-4 && d.mean_abs <= 1e-5;
      char buf[200];
      std::snprintf(buf, sizeof buf, "%d tokens, max %.2e mean %.2e (<= 5e-4/1e-5)%s", n, d.max_abs,
                    d.mean_abs, ok ? "" : " FAIL");
      report(ok, case_name, buf);
    }
  }

  // ---- audio/audio.json ----
  void audio(const fs::path& file) {
    const json j = read_json(file);
    const fs::path dir = file.parent_path();
    for (const auto& [name, c] : j.at("files").items()) {
      const std::string case_name = "audio/" + name;
      media::Audio a;
      try {
        a = media::load_audio((dir / c.at("file").get<std::string>()).string());
      } catch (const Error& e) {
        report(false, case_name, e.what());
        continue;
      }
      const std::string kind = c.at("reference").get<std::string>();
      const int64_t want_n = c.at("n_samples_16k").get<int64_t>();
      const int64_t n = int64_t(a.samples.size());
      const int want_tokens = c.at("n_tokens").get<int>();
      char buf[400];
      std::string detail;
      bool ok = true;
      std::vector<float> ref_samples;  // the reference signal when it is known exactly
      if (kind == "pcm") {
        ok = n == want_n;
        const auto first8 = c.at("ref_first8").get<std::vector<double>>();
        for (size_t i = 0; i < first8.size() && i < a.samples.size(); ++i) {
          ok = ok && std::fabs(a.samples[i] - first8[i]) <= 1e-9 + 1e-6 * std::fabs(first8[i]);
        }
        ref_samples = a.samples;
        std::snprintf(buf, sizeof buf, "%lld samples (exact)%s", (long long)n, ok ? "" : " FAIL");
        detail = buf;
      } else {
        // Resampled or MP3: length within 1 sample; against the stored reference signal when
        // there is one (RMS rel <= 3e-3, max abs <= 5e-3), else the energy of the signal.
        ok = std::llabs(n - want_n) <= 1 && media::audio_tokens(a.samples.size()) == want_tokens;
        if (c.contains("ref_samples_f32")) {
          ref_samples = read_f32(dir / c["ref_samples_f32"].get<std::string>(), size_t(want_n));
          const size_t m = std::min(ref_samples.size(), a.samples.size());
          double err2 = 0, sig2 = 0, max_abs = 0;
          for (size_t i = 0; i < m; ++i) {
            const double e = double(a.samples[i]) - ref_samples[i];
            err2 += e * e;
            sig2 += double(ref_samples[i]) * ref_samples[i];
            max_abs = std::max(max_abs, std::fabs(e));
          }
          const double rel = std::sqrt(err2 / std::max(sig2, 1e-30));
          const bool sig_ok = rel <= 3e-3 && max_abs <= 5e-3;
          ok = ok && sig_ok;
          std::snprintf(buf, sizeof buf, "%lld samples (ref %lld), RMS rel %.2e, max %.2e%s",
                        (long long)n, (long long)want_n, rel, max_abs, sig_ok ? "" : " FAIL");
        } else {
          double sum_sq = 0;
          for (float v : a.samples) sum_sq += double(v) * v;
          const double want = c.at("ref_stats").at("sum_sq").get<double>();
          const double rel = std::fabs(sum_sq - want) / want;
          const bool e_ok = rel <= 1e-2;
          ok = ok && e_ok;
          std::snprintf(buf, sizeof buf, "%lld samples (ref %lld), energy rel %.2e%s", (long long)n,
                        (long long)want_n, rel, e_ok ? "" : " FAIL");
        }
        detail = buf;
      }
      // Embedder on identical samples (max abs 1e-5).
      if (!ref_samples.empty() && c.contains("embd_numpy_f32")) {
        const int n_embd = c.at("embd_shape")[1].get<int>();
        const MediaEmbedding m = embed_samples(projector(n_embd), ref_samples, pool_);
        const auto ref =
            read_f32(dir / c["embd_numpy_f32"].get<std::string>(), size_t(want_tokens) * n_embd);
        if (m.rows.size() != ref.size()) {
          ok = false;
          detail += " | embedder: " + std::to_string(m.n_tokens) + " tokens FAIL";
        } else {
          const OracleDiff d = oracle_diff(m.rows.data(), ref.data(), ref.size());
          const bool e_ok = d.max_abs <= 1e-5;
          ok = ok && e_ok;
          std::snprintf(buf, sizeof buf, " | embedder %d tokens max %.2e (<= 1e-5)%s", m.n_tokens,
                        d.max_abs, e_ok ? "" : " FAIL");
          detail += buf;
        }
      }
      report(ok, case_name, detail);
    }
  }

  // ---- mm/**/mm_summary.json ----
  void mixed(const fs::path& file) {
    const json j = read_json(file);
    const fs::path dir = file.parent_path();
    const bool mid = dir.filename() == "tiny-a-mid";
    fs::path model_path =
        options_.model_override.empty() ? root_ / kTextModel : fs::path(options_.model_override);
    if (mid) {
      model_path = root_ / "models/tiny-a-mid/gemma4-tiny-a-mid-f32.gguf";
      if (!fs::exists(model_path)) {
        skip("mm/tiny-a-mid",
             "model tiny-a-mid is not shipped (regenerate it with gen_gemma4.py "
             "--full-every 3, README-multimodal §4.3)");
        return;
      }
    }
    if (!model_) {
      model_ = gemma4::load_model(model_path.string());
      auto f = gguf::File::open(model_path.string());
      tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_gguf(*f));
    }
    const gemma4::Model& model = *model_;
    const int E = model.config.n_embd;
    const size_t V = size_t(model.config.n_vocab);
    for (const auto& [name, summary] : j.at("prompts").items()) {
      const std::string case_name = std::string("mm/") + (mid ? "tiny-a-mid/" : "") + name;
      const fs::path case_dir = dir / name;
      if (!fs::exists(case_dir / "layout_and_logits.json")) {
        skip(case_name, "no layout_and_logits.json");
        continue;
      }
      const json c = read_json(case_dir / "layout_and_logits.json");
      const auto ids = c.at("ids").get<std::vector<int32_t>>();
      // Embed every media segment exactly as README-multimodal §4.1 says (§1-3 processing).
      gemma4::Input input;
      input.tokens = ids;
      input.block.assign(ids.size(), -1);
      std::vector<MediaEmbedding> items;
      int next_block = 0;
      for (const auto& s : c.at("segments")) {
        const std::string type = s.at("type").get<std::string>();
        if (type == "text") continue;
        const int start = s.at("start").get<int>(), len = s.at("n_tokens").get<int>();
        const fs::path media_file = root_ / s.at("file").get<std::string>();
        MediaEmbedding m;
        if (type == "image") {
          const media::Image img = media::load_image(media_file.string());
          const media::Patches p = media::preprocess_image(img, 70);
          m = embed_patches(projector(E), p.values, p.pos_x, p.pos_y, pool_);
        } else {
          m = embed_samples(projector(E), media::load_audio(media_file.string()).samples, pool_);
        }
        if (m.n_tokens != len || start < 0 || size_t(start + len) > ids.size()) {
          throw Error(case_dir.string() + ": segment at " + std::to_string(start) + " has " +
                      std::to_string(len) + " tokens, the embedder gave " +
                      std::to_string(m.n_tokens));
        }
        for (int i = start; i < start + len; ++i) {
          input.tokens[size_t(i)] = -1;
          if (type == "image") input.block[size_t(i)] = next_block;
        }
        if (type == "image") ++next_block;
        m.kind = type == "image" ? MediaKind::kImage : MediaKind::kAudio;
        items.push_back(std::move(m));
      }
      for (const auto& m : items) {
        input.embeddings.insert(input.embeddings.end(), m.rows.begin(), m.rows.end());
      }
      if (next_block == 0) input.block.clear();

      // Prompt assembly: the template text with placeholders must expand to the same ids.
      std::string assembly = "n/a";
      bool assembly_ok = true;
      if (c.contains("prompt_text")) {
        std::string text = c["prompt_text"].get<std::string>();
        size_t item = 0;
        for (size_t at = text.find("<__media__>"); at != std::string::npos;
             at = text.find("<__media__>", at)) {
          if (item >= items.size()) break;
          if (items[item].kind == MediaKind::kImage && at >= 2 &&
              text.compare(at - 2, 2, "\n\n") == 0 && text.compare(at + 11, 2, "\n\n") == 0) {
            text.replace(at - 2, 15, "<|image|>");
            at = at - 2 + 9;
          } else {
            text.replace(at, 11, items[item].kind == MediaKind::kImage ? "<|image|>" : "<|audio|>");
            at += 9;
          }
          ++item;
        }
        std::vector<const MediaEmbedding*> ptrs;
        for (const auto& m : items) ptrs.push_back(&m);
        const int32_t bos = tokenizer_->bos_id();
        const AssembledPrompt ap =
            assemble_prompt((bos >= 0 ? tokenizer_->token_piece(bos, true) : std::string()) + text,
                            *tokenizer_, ptrs, E);
        assembly_ok = ap.ids == ids && ap.input.block == input.block;
        assembly = assembly_ok ? "ids equal" : "ids DIFFER FAIL";
      }

      gemma4::DecoderOptions dopt;
      dopt.n_ctx = int(ids.size()) + 8;
      dopt.n_ubatch = 512;
      dopt.cache_type = options_.cache_type;
      dopt.global_cache_type = options_.global_cache_type;
      gemma4::Decoder decoder(model, dopt, pool_);
      gemma4::Output out;
      decoder.eval(input, gemma4::Outputs::kAll, &out);
      const size_t n = ids.size();
      const float* last = out.logits.data() + (n - 1) * V;
      const auto ref = read_f32(case_dir / "logits_last_hf_f32.bin", V);
      const OracleDiff d = oracle_diff(last, ref.data(), V);
      const int mine_arg = int(std::max_element(last, last + V) - last);
      const int ref_arg = int(std::max_element(ref.begin(), ref.end()) - ref.begin());
      bool ok = assembly_ok && d.max_abs <= 5e-3 && d.mean_abs <= 1e-3 && mine_arg == ref_arg;
      char buf[400];
      std::snprintf(buf, sizeof buf,
                    "%zu positions, %zu media | logits max %.2e mean %.2e (<= 5e-3/1e-3), argmax "
                    "%d/%d",
                    n, items.size(), d.max_abs, d.mean_abs, mine_arg, ref_arg);
      std::string detail = buf;
      if (fs::exists(case_dir / "hidden_final_norm_hf_f32.bin") &&
          out.hidden.size() == n * size_t(E)) {
        const auto h = read_f32(case_dir / "hidden_final_norm_hf_f32.bin", n * size_t(E));
        const OracleDiff dh = oracle_diff(out.hidden.data(), h.data(), h.size());
        const bool h_ok = dh.max_abs <= 5e-3;
        ok = ok && h_ok;
        std::snprintf(buf, sizeof buf, " | hidden max %.2e (<= 5e-3)%s", dh.max_abs,
                      h_ok ? "" : " FAIL");
        detail += buf;
      }
      report(ok, case_name, detail + " | assembly " + assembly);
    }
  }

  // ---- mm/video/video_layout.json: frame sampling, timestamps, tokens and prompt ids ----
  void video(const fs::path& file) {
    const json j = read_json(file);
    const fs::path clip = file.parent_path() / j.at("clip").get<std::string>();
    const auto vocab = gguf::File::open((root_ / "tokenizer/ggml-vocab-gemma4.gguf").string());
    const Tokenizer tok = Tokenizer::from_gguf(*vocab);
    for (const auto& [key, c] : j.at("cases").items()) {
      const std::string name = "video/" + key;
      int frames = media::kVideoMaxFrames;
      double fps = 0;
      if (key.rfind("num_frames=", 0) == 0) frames = std::stoi(key.substr(11));
      if (key.rfind("fps=", 0) == 0) fps = std::stod(key.substr(4));
      if (frames <= 0 || frames > media::kVideoMaxFrames || fps < 0) {
        report(false, name, "unexpected case key");
        continue;
      }
      media::Video v;
      try {
        media::VideoOptions vo;
        vo.max_frames = frames;
        vo.sample_fps = fps;
        v = media::load_video(clip.string(), vo);
      } catch (const Error& e) {
        report(false, name, e.what());
        continue;
      }
      if (!c.contains("frame_indices")) {  // the reference raises for more frames than the clip has
        const bool ok = v.frames.size() == size_t(v.total_frames);
        report(ok, name,
               "the reference raises; sampled all " + std::to_string(v.frames.size()) + " of " +
                   std::to_string(v.total_frames) + " frames instead (spec §12.7)");
        continue;
      }
      bool ok = true;
      std::string detail;
      const auto want_idx = c.at("frame_indices").get<std::vector<int64_t>>();
      const auto want_ts = c.at("timestamp_strings").get<std::vector<std::string>>();
      MediaEmbedding m;
      m.kind = MediaKind::kVideo;
      ok = ok && v.frames.size() == want_idx.size();
      for (size_t i = 0; ok && i < v.frames.size(); ++i) {
        const media::ResizeTarget t =
            media::target_size(v.frames[i].image.height, v.frames[i].image.width, 70);
        ok = v.frames[i].index == want_idx[i] &&
             media::format_timestamp(v.frames[i].seconds) == want_ts[i] &&
             t.tokens() == c.at("soft_tokens_per_frame").get<int>() &&
             t.height == c.at("frame_target_hw")[0].get<int>() &&
             t.width == c.at("frame_target_hw")[1].get<int>();
        m.segments.push_back(
            {MediaKind::kVideo, t.tokens(), media::format_timestamp(v.frames[i].seconds)});
        m.n_tokens += t.tokens();
      }
      if (!ok) {
        report(false, name, "frame indices, timestamps or frame sizes differ");
        continue;
      }
      m.rows.assign(size_t(m.n_tokens), 0.0f);
      const AssembledPrompt p = assemble_prompt(
          "<bos><|turn>user\n<|video|>Describe the video.<turn|>\n<|turn>model\n", tok, {&m}, 1);
      const bool ids_ok = p.ids == c.at("real_vocab_ids").get<std::vector<int32_t>>();
      bool blocks_ok = true;
      int block = 0;
      for (const auto& range : c.at("vision_blocks_inclusive")) {
        for (int i = range[0].get<int>(); i <= range[1].get<int>(); ++i) {
          blocks_ok =
              blocks_ok && size_t(i) < p.input.block.size() && p.input.block[size_t(i)] == block;
        }
        ++block;
      }
      blocks_ok =
          blocks_ok && std::count_if(p.input.block.begin(), p.input.block.end(), [](int32_t b) {
                         return b >= 0;
                       }) == int64_t(v.frames.size()) * c.at("soft_tokens_per_frame").get<int>();
      char buf[200];
      std::snprintf(buf, sizeof buf, "%zu frames at %s..., %zu prompt ids %s, blocks %s",
                    v.frames.size(), want_ts.front().c_str(), p.ids.size(),
                    ids_ok ? "equal" : "DIFFER", blocks_ok ? "equal" : "DIFFER");
      report(ids_ok && blocks_ok, name, buf);
    }
  }

 private:
  fs::path root_;
  OracleOptions options_;
  std::ostream& out_;
  OracleSummary* summary_;
  ThreadPool pool_;
  std::unique_ptr<gemma4::Projector> projector_;
  std::unique_ptr<gemma4::Model> model_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace

bool is_multimodal_case_file(const fs::path& p) {
  const std::string name = p.filename().string();
  return name == "vision_preprocess.json" || name == "vision_embedder.json" ||
         name == "audio.json" || name == "mm_summary.json" || name == "video_layout.json";
}

void run_multimodal_case_file(const fs::path& file, const OracleOptions& options, std::ostream& out,
                              OracleSummary* summary) {
  Runner r(root_of(file), options, out, summary);
  const std::string name = file.filename().string();
  if (name == "vision_preprocess.json") {
    r.vision_preprocess(file);
  } else if (name == "vision_embedder.json") {
    r.vision_embedder(file);
  } else if (name == "audio.json") {
    r.audio(file);
  } else if (name == "mm_summary.json") {
    r.mixed(file);
  } else if (name == "video_layout.json") {
    r.video(file);
  }
}

}  // namespace ug
