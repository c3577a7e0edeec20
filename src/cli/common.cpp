#include "cli/common.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "format/gguf.h"
#include "media/image.h"
#include "runtime/hub.h"
#include "runtime/memory_plan.h"
#include "util/error.h"

namespace ug::cli {

LoadedModel load_model_and_tokenizer(const std::string& path_or_spec) {
  // `hf:owner/name[:FILE]`: the cached download, pulled on first use.
  std::string path = path_or_spec;
  if (path.rfind("hf:", 0) == 0) {
    hub::PullOptions po;
    po.progress = isatty(STDERR_FILENO);
    po.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    path = hub::ensure(path, po).model;
  }
  LoadedModel m;
  m.model = gemma4::load_model(path);
  m.tokenizer = std::make_unique<Tokenizer>(std::filesystem::is_directory(path)
                                                ? Tokenizer::from_hf_dir(path)
                                                : Tokenizer::from_gguf(*m.model->gguf));
  return m;
}

std::string default_model_path() {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (const char* env = std::getenv("UNIGEMMA_MODEL"); env && *env) return env;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed =
        exe.parent_path().parent_path() / "share" / "unigemma" / "unigemma-nano.gguf";
    if (fs::is_regular_file(installed, ec)) return installed.string();
  }
#ifdef UG_SOURCE_TREE_MODEL
  if (fs::is_regular_file(UG_SOURCE_TREE_MODEL, ec)) return UG_SOURCE_TREE_MODEL;
#endif
  return {};
}

std::vector<int32_t> chat_turn_ids(const Tokenizer& tokenizer, const std::string& text) {
  nlohmann::ordered_json inputs;
  inputs["messages"] = nlohmann::ordered_json::array({{{"role", "user"}, {"content", text}}});
  inputs["add_generation_prompt"] = true;
  inputs["enable_thinking"] = false;
  const int32_t bos = tokenizer.bos_id();
  inputs["bos_token"] = bos >= 0 ? tokenizer.token_piece(bos, true) : std::string();
  EncodeOptions eo;
  eo.add_bos = false;  // the template writes <bos>
  eo.parse_special = true;
  return tokenizer.encode(ChatTemplate(tokenizer.chat_template()).render(inputs), eo);
}

std::string model_path_from_args(const Args& args, const char* command) {
  std::string path = args.get({"-m", "--model"});
  if (!path.empty()) return path;
  path = default_model_path();
  if (path.empty()) {
    throw Error(std::string(command) +
                ": missing -m MODEL (and the bundled default model unigemma-nano.gguf is not "
                "installed; set UNIGEMMA_MODEL or give -m)");
  }
  std::fprintf(stderr, "model: %s (the bundled default; -m MODEL for another)\n", path.c_str());
  return path;
}

const std::vector<std::string> kGenerationOptions = {"-m",
                                                     "--model",
                                                     "-t",
                                                     "--threads",
                                                     "--ctx",
                                                     "-c",
                                                     "--cache-type",
                                                     "--ubatch",
                                                     "-n",
                                                     "--n-predict",
                                                     "--temp",
                                                     "--top-k",
                                                     "--top-p",
                                                     "--min-p",
                                                     "--repeat-penalty",
                                                     "--presence-penalty",
                                                     "--frequency-penalty",
                                                     "--repeat-last-n",
                                                     "--seed",
                                                     "--system",
                                                     "--chat-template",
                                                     "--think",
                                                     "--draft",
                                                     "--draft-max",
                                                     "--draft-min",
                                                     "--draft-adaptive",
                                                     "--mem-limit",
                                                     "--kv-commit",
                                                     "--cache-type-global"};

const char* kGenerationHelp =
    "  -m, --model MODEL       GGUF file, bundle or HF folder (default: the bundled\n"
    "                          unigemma-nano, or $UNIGEMMA_MODEL)\n"
    "  -t, --threads N         threads (default: all cores)\n"
    "  --ctx N|auto            context length in tokens (default 4096); auto: the largest that\n"
    "                          fits the memory plan (printed) within the available memory\n"
    "  --mem-limit SIZE        memory budget for the plan, e.g. 12G (default: available memory)\n"
    "  --kv-commit on|off      take the whole KV cache's memory at start-up (default off: pages\n"
    "                          are committed as the context fills)\n"
    "  --cache-type T          KV cache storage: f16 (default), f32, bf16, q8_0\n"
    "  --cache-type-global T   storage of the full-attention layers' cache, the part that grows\n"
    "                          with the context (default: --cache-type)\n"
    "  -n, --n-predict N       maximum tokens per answer (default 1024)\n"
    "  --temp X                temperature; 0 = greedy (default: the model's, Gemma 4: 1.0)\n"
    "  --top-k N, --top-p X, --min-p X       truncation (default: the model's, 64 / 0.95 / 0)\n"
    "  --repeat-penalty X, --presence-penalty X, --frequency-penalty X, --repeat-last-n N\n"
    "  --seed N                sampling seed (default 0)\n"
    "  --system TEXT           system prompt\n"
    "  --think on|off          thinking mode (default off)\n"
    "  --chat-template FILE    use this Jinja template instead of the model's\n"
    "  --draft FILE            MTP drafter (gemma4-assistant GGUF or HF folder): speculative "
    "decoding\n"
    "  --draft auto|none       auto: the drafter found next to the model (*assistant*, *draft*,\n"
    "                          *mtp* in the name); none: no drafter and no hint\n"
    "  --draft-max N, --draft-min N   drafts per round (default 4 / 0; 0 lets it switch off)\n"
    "  --draft-adaptive on|off choose the depth each round from measured speed (default on)\n";

uint64_t path_bytes(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path.empty()) return 0;
  if (!fs::is_directory(path, ec)) {
    const auto n = fs::file_size(path, ec);
    return ec ? 0 : uint64_t(n);
  }
  uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    if (e.path().extension() == ".safetensors") total += uint64_t(e.file_size(ec));
  }
  return total;
}

std::optional<TensorType> global_cache_type_from_args(const Args& args) {
  const std::string g = args.get({"--cache-type-global"});
  if (g.empty()) return std::nullopt;
  TensorType t;
  if (!parse_tensor_type(g, &t)) throw Error("unknown --cache-type-global '" + g + "'");
  return t;
}

int plan_context(const Args& args, const LoadedModel& m, int n_ctx, bool auto_ctx, int n_ubatch,
                 TensorType cache_type, std::optional<TensorType> global_cache_type) {
  MemoryPlanRequest req;
  req.config = &m.model->config;
  req.weight_bytes = m.model->weight_bytes;
  req.n_ctx = n_ctx;
  req.n_ubatch = n_ubatch;
  req.cache_type = cache_type;
  req.global_cache_type = global_cache_type;
  req.drafter_bytes = path_bytes(args.get({"--draft"}));
  req.projector_bytes = path_bytes(args.get({"--mmproj"}));
  if (req.projector_bytes > 0 || !args.get_all("--image").empty()) {
    req.max_image_tokens = args.get_int({"--image-tokens"}, MediaOptions{}.image_budget);
  }
  const std::string limit = args.get({"--mem-limit"});
  const uint64_t budget = limit.empty() ? available_memory() : parse_memory_size(limit);
  const std::string source = limit.empty() ? "available memory" : "--mem-limit";
  if (auto_ctx) {
    if (budget == 0) throw Error("--ctx auto: cannot read the available memory; give --mem-limit");
    req.n_ctx = auto_context(req, budget);
    std::fprintf(stderr, "memory plan: %s (%s %s)\n", plan_memory(req).summary().c_str(),
                 source.c_str(), human_bytes(double(budget)).c_str());
    return req.n_ctx;
  }
  check_memory_plan(plan_memory(req), budget, source);
  return n_ctx;
}

int threads_from_args(const Args& args) {
  const int t = args.get_int({"-t", "--threads"}, default_threads());
  if (t <= 0 || t > 1024) throw Error("option --threads: must be between 1 and 1024");
  return t;
}

ChatOptions chat_options_from_args(const Args& args, const LoadedModel& m) {
  ChatOptions o;
  if (m.model->gguf) {
    const gguf::File& f = *m.model->gguf;
    apply_model_sampling_defaults([&f](std::string_view k) { return f.opt_float(k); }, o.sampling);
  }
  const bool auto_ctx = args.get({"--ctx", "-c"}) == "auto";
  o.n_ctx = auto_ctx ? 4096 : args.get_int({"--ctx", "-c"}, 4096);
  o.n_ubatch = args.get_int({"--ubatch"}, 512);
  if (o.n_ctx <= 0 || o.n_ubatch <= 0) throw Error("options --ctx and --ubatch must be > 0");
  const std::string ct = args.get({"--cache-type"}, "f16");
  if (!parse_tensor_type(ct, &o.cache_type)) throw Error("unknown --cache-type '" + ct + "'");
  o.global_cache_type = global_cache_type_from_args(args);
  const std::string commit = args.get({"--kv-commit"}, "off");
  if (commit != "on" && commit != "off") throw Error("option --kv-commit: expected on or off");
  o.commit_kv = commit == "on";
  o.n_ctx = plan_context(args, m, o.n_ctx, auto_ctx, o.n_ubatch, o.cache_type, o.global_cache_type);
  o.max_tokens = args.get_int({"-n", "--n-predict"}, 1024);
  if (o.max_tokens < 0) throw Error("option -n: must be >= 0");
  SamplerParams& s = o.sampling;
  s.temperature = float(args.get_double({"--temp"}, s.temperature));
  s.top_k = args.get_int({"--top-k"}, s.top_k);
  s.top_p = float(args.get_double({"--top-p"}, s.top_p));
  s.min_p = float(args.get_double({"--min-p"}, s.min_p));
  s.repetition_penalty = float(args.get_double({"--repeat-penalty"}, s.repetition_penalty));
  s.presence_penalty = float(args.get_double({"--presence-penalty"}, s.presence_penalty));
  s.frequency_penalty = float(args.get_double({"--frequency-penalty"}, s.frequency_penalty));
  s.penalty_last_n = args.get_int({"--repeat-last-n"}, s.penalty_last_n);
  s.seed = uint64_t(args.get_int({"--seed"}, 0));
  validate(s);
  o.speculative.draft_max = args.get_int({"--draft-max"}, o.speculative.draft_max);
  o.speculative.draft_min = args.get_int({"--draft-min"}, o.speculative.draft_min);
  const std::string adaptive = args.get({"--draft-adaptive"}, "on");
  if (adaptive != "on" && adaptive != "off") {
    throw Error("option --draft-adaptive: expected on or off");
  }
  o.speculative.adaptive = adaptive == "on";
  validate(o.speculative);
  const std::string think = args.get({"--think"}, "off");
  if (think != "on" && think != "off") throw Error("option --think: expected on or off");
  o.enable_thinking = think == "on";
  const std::string tpl = args.get({"--chat-template"});
  if (!tpl.empty()) {
    std::ifstream in(tpl);
    if (!in) throw Error(tpl + ": cannot open chat template");
    o.chat_template.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return o;
}

const std::vector<std::string> kMediaOptions = {
    "--mmproj",    "--image",      "--audio",       "--video",        "--image-tokens",
    "--audio-max", "--audio-clip", "--video-audio", "--video-frames", "--video-fps"};

const char* kMediaHelp =
    "  --mmproj FILE           multimodal projector (mmproj GGUF or HF folder); not needed\n"
    "                          when the model file bundles it\n"
    "  --image FILE            attach an image (PNG, JPEG, GIF, WebP, BMP, PPM); repeatable\n"
    "  --audio FILE            attach audio (WAV, FLAC, OGG, MP3); repeatable\n"
    "  --video FILE            attach a video (MP4/MOV, MKV/WebM, AVI, MPEG, FLV, OGG, ASF):\n"
    "                          up to 32 frames at 70 tokens each, then its audio track;\n"
    "                          repeatable\n"
    "  --image-tokens N        soft tokens per image: 70, 140, 280, 560, 1120 (default: the\n"
    "                          model's max_soft_tokens, else 280)\n"
    "  --audio-clip SECONDS    longer audio is split into clips of this length (default 30,\n"
    "                          the model's training length)\n"
    "  --audio-max SECONDS     most audio accepted per file or video track (default 300)\n"
    "  --video-audio on|off    use a video's audio track (default on)\n"
    "  --video-frames N        frames sampled per video, 1..32 (default 32)\n"
    "  --video-fps F           sample F frames per second of video instead (still at most\n"
    "                          --video-frames); default: spread --video-frames over the clip\n";

std::unique_ptr<gemma4::Projector> projector_from_args(const Args& args, const LoadedModel& m) {
  const std::string path = args.get({"--mmproj"});
  const int n_embd = m.model->config.n_embd;
  if (!path.empty()) return gemma4::load_projector(path, n_embd);
  if (const std::string mm = hub::cached_companion(m.model->path, "mmproj"); !mm.empty()) {
    return gemma4::load_projector(mm, n_embd);  // pulled next to the model
  }
  if (m.model->gguf && (m.model->gguf->find_tensor("v.patch_embd.weight") ||
                        m.model->gguf->find_tensor("mm.a.input_projection.weight"))) {
    return gemma4::load_projector(m.model->path, n_embd);
  }
  if (m.model->safetensors && gemma4::has_projector_tensors(m.model->path)) {
    return gemma4::load_projector(m.model->path, n_embd);
  }
  return nullptr;
}

MediaOptions media_options_from_args(const Args& args, const gemma4::Projector* projector) {
  MediaOptions o;
  const bool model_default =
      !args.has("--image-tokens") && projector && projector->default_image_tokens > 0;
  if (model_default) o.image_budget = projector->default_image_tokens;
  o.image_budget = args.get_int({"--image-tokens"}, o.image_budget);
  bool known_budget = false;
  for (int b : media::kImageBudgets) known_budget = known_budget || b == o.image_budget;
  if (!known_budget && model_default) {
    throw Error(projector->path + ": the model's default of " + std::to_string(o.image_budget) +
                " soft tokens per image is not one of 70, 140, 280, 560, 1120 (give "
                "--image-tokens)");
  }
  if (!known_budget) throw Error("option --image-tokens: expected 70, 140, 280, 560 or 1120");
  o.audio_max_seconds = args.get_double({"--audio-max"}, o.audio_max_seconds);
  if (!(o.audio_max_seconds > 0) || o.audio_max_seconds > 24 * 3600) {
    throw Error("option --audio-max: must be > 0 and at most 86400 seconds");
  }
  o.audio_clip_seconds = args.get_double({"--audio-clip"}, o.audio_clip_seconds);
  if (!(o.audio_clip_seconds >= 0.04) || o.audio_clip_seconds > 3600) {
    throw Error("option --audio-clip: must be between 0.04 and 3600 seconds");
  }
  const std::string va = args.get({"--video-audio"}, "on");
  if (va != "on" && va != "off") throw Error("option --video-audio: expected on or off");
  o.video_audio = va == "on";
  o.video_frames = args.get_int({"--video-frames"}, o.video_frames);
  if (o.video_frames < 1 || o.video_frames > 32) {
    throw Error("option --video-frames: expected 1 to 32");
  }
  o.video_fps = args.get_double({"--video-fps"}, o.video_fps);
  if (!(o.video_fps >= 0) || o.video_fps > 1000) {
    throw Error("option --video-fps: expected 0 to 1000 frames per second");
  }
  return o;
}

void attach_media_from_args(const Args& args, const gemma4::Projector* projector,
                            ChatSession& session) {
  session.set_projector(projector, media_options_from_args(args, projector));
  for (const auto& [option, kind] :
       {std::pair{"--image", MediaKind::kImage}, std::pair{"--audio", MediaKind::kAudio},
        std::pair{"--video", MediaKind::kVideo}}) {
    for (const auto& f : args.get_all(option)) print_media_notices(session.attach(kind, f));
  }
}

void print_media_notices(const MediaEmbedding& m) {
  for (const auto& n : m.notices) std::fprintf(stderr, "note: %s\n", n.c_str());
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

bool drafter_name(const std::string& filename) {
  const std::string n = lower(filename);
  return n.find("assistant") != std::string::npos || n.find("draft") != std::string::npos ||
         n.find("mtp") != std::string::npos;
}

// Cheap checks from metadata only (no weights read): architecture, backbone width, vocabulary.
bool drafter_fits(const std::filesystem::path& p, const gemma4::Model& model) {
  namespace fs = std::filesystem;
  if (fs::is_directory(p)) {
    std::ifstream in(p / "config.json");
    if (!in) return false;
    const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("architectures") || !j["architectures"].is_array() ||
        j["architectures"].empty() || !j["architectures"][0].is_string()) {
      return false;
    }
    const std::string arch = j["architectures"][0].get<std::string>();
    if (arch.find("AssistantForCausalLM") == std::string::npos) return false;
    return j.value("backbone_hidden_size", 0) == model.config.n_embd;
  }
  if (lower(p.extension().string()) != ".gguf") return false;
  const auto f = gguf::File::open(p.string());
  if (f->opt_string("general.architecture").value_or("") != "gemma4-assistant") return false;
  if (f->opt_int("gemma4-assistant.embedding_length_out").value_or(-1) != model.config.n_embd) {
    return false;
  }
  const gguf::TensorInfo* embd = f->find_tensor("token_embd.weight");
  return embd && embd->n_dims == 2 && embd->ne[1] == model.config.n_vocab;
}

}  // namespace

std::string find_drafter_near(const std::string& model_path, const gemma4::Model& model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path model_file = fs::absolute(model_path, ec);
  if (ec) return {};
  while (!model_file.has_filename() && model_file.has_parent_path() &&
         model_file != model_file.parent_path()) {
    model_file = model_file.parent_path();  // "dir/" of an HF folder
  }
  const fs::path dir = model_file.parent_path();
  std::vector<fs::path> found;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path p = it->path();
    if (p.filename() == model_file.filename() || !drafter_name(p.filename().string())) continue;
    try {
      if (drafter_fits(p, model)) found.push_back(p);
    } catch (const std::exception&) {
      // Not a readable drafter: not worth mentioning.
    }
  }
  if (found.empty()) return {};
  std::sort(found.begin(), found.end());
  return found.front().string();
}

LoadedDrafter drafter_from_args(const Args& args, const LoadedModel& m, ThreadPool& pool) {
  LoadedDrafter d;
  std::string path = args.get({"--draft"});
  if (path == "none") return d;
  // A bundle GGUF (docs/bundle-gguf.md) carries its drafter, and `pull` fetches the repo's: use
  // them unless --draft names another.
  if (path.empty() && m.model->gguf && m.model->gguf->has("gemma4-assistant.block_count")) {
    path = m.model->path;
  }
  if (path.empty()) path = hub::cached_companion(m.model->path, "assistant");
  if (path.empty() || path == "auto") {
    const std::string near = find_drafter_near(m.model->path, *m.model);
    if (path.empty()) {
      if (!near.empty()) {
        std::fprintf(stderr,
                     "hint: MTP drafter %s found next to the model; --draft auto (or --draft "
                     "FILE) enables speculative decoding, --draft none hides this\n",
                     near.c_str());
      }
      return d;
    }
    if (near.empty()) {
      throw Error("option --draft auto: no drafter next to " + m.model->path +
                  " (a gemma4-assistant GGUF or HF folder with assistant, draft or mtp in its "
                  "name, same width and vocabulary)");
    }
    path = near;
    std::fprintf(stderr, "drafter: %s\n", path.c_str());
  }
  d.model = gemma4::load_drafter(path);
  d.drafter = std::make_unique<gemma4::Drafter>(*d.model, *m.model, pool);
  return d;
}

LoadedDrafter attach_drafter_from_args(const Args& args, const LoadedModel& m, ThreadPool& pool,
                                       ChatSession& session) {
  LoadedDrafter d = drafter_from_args(args, m, pool);
  if (d.drafter) session.set_drafter(d.drafter.get());
  return d;
}

}  // namespace ug::cli
