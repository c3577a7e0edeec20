#include "cli/common.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "format/gguf.h"
#include "media/image.h"
#include "util/error.h"

namespace ug::cli {

LoadedModel load_model_and_tokenizer(const std::string& path) {
  LoadedModel m;
  m.model = gemma4::load_model(path);
  m.tokenizer = std::make_unique<Tokenizer>(std::filesystem::is_directory(path)
                                                ? Tokenizer::from_hf_dir(path)
                                                : Tokenizer::from_gguf(*m.model->gguf));
  return m;
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
                                                     "--draft-adaptive"};

const char* kGenerationHelp =
    "  -t, --threads N         threads (default: all cores)\n"
    "  --ctx N                 context length in tokens (default 4096)\n"
    "  --cache-type T          KV cache storage: f16 (default), f32, bf16, q8_0\n"
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
  o.n_ctx = args.get_int({"--ctx", "-c"}, 4096);
  o.n_ubatch = args.get_int({"--ubatch"}, 512);
  if (o.n_ctx <= 0 || o.n_ubatch <= 0) throw Error("options --ctx and --ubatch must be > 0");
  const std::string ct = args.get({"--cache-type"}, "f16");
  if (!parse_tensor_type(ct, &o.cache_type)) throw Error("unknown --cache-type '" + ct + "'");
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

const std::vector<std::string> kMediaOptions = {"--mmproj", "--image", "--audio", "--image-tokens",
                                                "--audio-max"};

const char* kMediaHelp =
    "  --mmproj FILE           multimodal projector (mmproj GGUF or HF folder); not needed\n"
    "                          when the model file bundles it\n"
    "  --image FILE            attach an image (PNG, JPEG, GIF, WebP, BMP, PPM); repeatable\n"
    "  --audio FILE            attach audio (WAV, FLAC, OGG, MP3); repeatable\n"
    "  --image-tokens N        soft tokens per image: 70, 140, 280 (default), 560, 1120\n"
    "  --audio-max SECONDS     longest accepted clip (default 30, the model's training length)\n";

std::unique_ptr<gemma4::Projector> projector_from_args(const Args& args, const LoadedModel& m) {
  const std::string path = args.get({"--mmproj"});
  const int n_embd = m.model->config.n_embd;
  if (!path.empty()) return gemma4::load_projector(path, n_embd);
  if (m.model->gguf && (m.model->gguf->find_tensor("v.patch_embd.weight") ||
                        m.model->gguf->find_tensor("mm.a.input_projection.weight"))) {
    return gemma4::load_projector(m.model->path, n_embd);
  }
  if (m.model->safetensors && gemma4::has_projector_tensors(m.model->path)) {
    return gemma4::load_projector(m.model->path, n_embd);
  }
  return nullptr;
}

MediaOptions media_options_from_args(const Args& args) {
  MediaOptions o;
  o.image_budget = args.get_int({"--image-tokens"}, o.image_budget);
  bool known_budget = false;
  for (int b : media::kImageBudgets) known_budget = known_budget || b == o.image_budget;
  if (!known_budget) throw Error("option --image-tokens: expected 70, 140, 280, 560 or 1120");
  o.audio_max_seconds = args.get_double({"--audio-max"}, o.audio_max_seconds);
  if (!(o.audio_max_seconds > 0)) throw Error("option --audio-max: must be > 0 seconds");
  return o;
}

void attach_media_from_args(const Args& args, const gemma4::Projector* projector,
                            ChatSession& session) {
  session.set_projector(projector, media_options_from_args(args));
  for (const auto& f : args.get_all("--image")) session.attach(MediaKind::kImage, f);
  for (const auto& f : args.get_all("--audio")) session.attach(MediaKind::kAudio, f);
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
