// `unigemma convert` (Hugging Face folder -> GGUF) and `unigemma quantize` (GGUF -> GGUF).
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "runtime/convert.h"
#include "util/error.h"

namespace ug::cli {

namespace {

ConvertProgress bar_progress(ProgressBar& bar) {
  ConvertProgress p;
  p.on_tensor = [&bar](const std::string&, const std::string&, int i, int n) { bar.update(i, n); };
  return p;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int cmd_convert(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h", "--bundle", "--no-mmproj"});
  if (args.has("--help") || args.has("-h") || args.positional().size() != 1) {
    std::printf(
        "usage: unigemma convert HF_DIR -o OUT.gguf [--type TYPE] [options]\n"
        "  HF_DIR: a Hugging Face folder (config.json, *.safetensors or a sharded index,\n"
        "          tokenizer.json, tokenizer_config.json, generation_config.json) of\n"
        "          Gemma4UnifiedForConditionalGeneration or Gemma4UnifiedAssistantForCausalLM\n"
        "  --type TYPE          %s (default bf16); see docs/convert.md for which tensors get which "
        "type\n"
        "  --mmproj-out FILE    where the projector goes (default: mmproj-OUT.gguf next to OUT)\n"
        "  --no-mmproj          write the text model only\n"
        "  --bundle             one file: text + projector (+ --assistant DIR drafter) + "
        "tokenizer\n"
        "                       + chat template, loadable with a single -m (docs/bundle-gguf.md)\n"
        "  --assistant DIR      the drafter's HF folder, bundled under the mtp. prefix\n"
        "  --vocab FILE.gguf    take the tokenizer from a GGUF instead of tokenizer.json\n"
        "  --name NAME          general.name (default: from config.json or the folder name)\n"
        "  -t N                 threads (default: all cores)\n",
        output_type_names());
    return args.has("--help") || args.has("-h") ? 0 : 2;
  }
  args.reject_unknown({"-o", "--output", "--type", "--mmproj-out", "--no-mmproj", "--bundle",
                       "--assistant", "--vocab", "--name", "-t", "--threads"});
  ConvertOptions o;
  const std::string type = args.get({"--type"}, "bf16");
  if (!parse_output_type(type, &o.type)) {
    throw Error("convert: unknown --type '" + type + "' (" + output_type_names() + ")");
  }
  o.out_path = args.get({"-o", "--output"});
  if (o.out_path.empty()) throw Error("convert: missing -o OUT.gguf");
  o.mmproj_out = args.get({"--mmproj-out"});
  o.no_mmproj = args.has("--no-mmproj");
  o.bundle = args.has("--bundle");
  o.assistant_dir = args.get({"--assistant"});
  o.vocab_gguf = args.get({"--vocab"});
  o.name = args.get({"--name"});
  o.n_threads = args.get_int({"-t", "--threads"}, default_threads());
  if (o.n_threads < 1) throw Error("convert: -t must be at least 1");
  ProgressBar bar("converting");
  o.progress = bar_progress(bar);
  const auto t0 = std::chrono::steady_clock::now();
  const auto files = convert_hf_to_gguf(args.positional()[0], o);
  bar.done();
  for (const auto& f : files) {
    std::fprintf(stderr, "wrote %s (%s, %.1f MB)\n", f.c_str(), o.type.name.c_str(),
                 double(std::filesystem::file_size(f)) / 1e6);
  }
  std::fprintf(stderr, "done in %.1f s\n", seconds_since(t0));
  return 0;
}

int cmd_quantize(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h", "--allow-requantize"});
  if (args.has("--help") || args.has("-h") || args.positional().size() != 3) {
    std::printf(
        "usage: unigemma quantize IN.gguf OUT.gguf TYPE [-t N] [--allow-requantize]\n"
        "  TYPE: %s\n"
        "  Text models, projectors (kept at 8 bits or more), drafters and bundles; norms stay "
        "F32,\n"
        "  the tied embedding is Q6_K below 8 bits (docs/convert.md).\n",
        output_type_names());
    return args.has("--help") || args.has("-h") ? 0 : 2;
  }
  args.reject_unknown({"-t", "--threads", "--allow-requantize"});
  OutputType type;
  const std::string name = args.positional()[2];
  if (!parse_output_type(name, &type)) {
    throw Error("quantize: unknown type '" + name + "' (" + output_type_names() + ")");
  }
  const int threads = args.get_int({"-t", "--threads"}, default_threads());
  if (threads < 1) throw Error("quantize: -t must be at least 1");
  ProgressBar bar("quantizing");
  const auto t0 = std::chrono::steady_clock::now();
  quantize_gguf(args.positional()[0], args.positional()[1], type, threads,
                args.has("--allow-requantize"), bar_progress(bar));
  bar.done();
  std::fprintf(stderr, "wrote %s (%s, %.1f MB) in %.1f s\n", args.positional()[1].c_str(),
               type.name.c_str(), double(std::filesystem::file_size(args.positional()[1])) / 1e6,
               seconds_since(t0));
  return 0;
}

}  // namespace ug::cli
