#include <chrono>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "model/gemma4/synth.h"
#include "util/error.h"

namespace ug::cli {

int cmd_synth(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h", "--mmproj", "--bundle", "--drafter"});
  if (args.has("--help") || args.has("-h")) {
    std::puts(
        "usage: unigemma synth --shape 12b|tiny --type TYPE -o FILE [--seed N] "
        "[--layers N] [--mmproj|--bundle|--drafter]\n"
        "       unigemma synth --shape 12b|tiny --format safetensors [--type bf16] -o DIR\n"
        "  TYPE: f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k (q4_0 stores the tied embedding as Q6_K)\n"
        "  --mmproj   write the multimodal projector of that shape instead (gemma4uv + gemma4ua;\n"
        "             matrices in TYPE when f32/f16/bf16, else bf16)\n"
        "  --bundle   write one GGUF holding the text model and the projector tensors\n"
        "  --drafter  write the shape's MTP drafter (gemma4-assistant, spec 4) instead\n"
        "  --layers N only the first N decoder layers of the shape (a slice for benchmarks;\n"
        "             the 5 sliding : 1 full pattern and every per-layer tensor are kept)\n"
        "  --format safetensors writes a Hugging Face folder (config, tokenizer, sharded\n"
        "  safetensors with the vision/audio embedders) in f32, f16 or bf16 (default bf16)");
    return 0;
  }
  args.reject_unknown({"--shape", "--type", "-o", "--output", "--seed", "--format", "--mmproj",
                       "--bundle", "--drafter", "--layers"});
  const std::string format = args.get({"--format"}, "gguf");
  if (format != "gguf" && format != "safetensors") {
    throw Error("synth: unknown --format '" + format + "' (gguf or safetensors)");
  }
  if (format == "safetensors" &&
      (args.has("--mmproj") || args.has("--bundle") || args.has("--drafter"))) {
    throw Error(
        "synth: --mmproj/--bundle/--drafter write GGUF (the safetensors folder has the "
        "text model and both embedders)");
  }
  gemma4::SynthOptions o;
  o.shape = args.get({"--shape"}, "tiny");
  const std::string type = args.get({"--type"}, format == "gguf" ? "q8_0" : "bf16");
  if (!parse_tensor_type(type, &o.type)) throw Error("synth: unknown --type '" + type + "'");
  o.seed = uint64_t(args.get_int({"--seed"}, 1234));
  if (int(args.has("--mmproj")) + int(args.has("--bundle")) + int(args.has("--drafter")) > 1) {
    throw Error("synth: --mmproj, --bundle and --drafter exclude each other");
  }
  if (args.has("--mmproj")) o.content = gemma4::SynthOptions::Content::kProjector;
  if (args.has("--bundle")) o.content = gemma4::SynthOptions::Content::kBundle;
  o.drafter = args.has("--drafter");
  if (args.has("--layers")) {
    if (args.has("--mmproj") || o.drafter) {
      throw Error("synth: --layers slices the text model; not with --mmproj or --drafter");
    }
    o.layers = args.get_int({"--layers"}, 0);
    if (o.layers < 1) throw Error("synth: --layers must be >= 1");
  }
  const std::string out = args.get({"-o", "--output"});
  if (out.empty()) throw Error("synth: missing -o FILE");
  const auto t0 = std::chrono::steady_clock::now();
  if (format == "safetensors") {
    gemma4::write_synthetic_hf(o, out);
  } else {
    gemma4::write_synthetic_model(o, out);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const char* what = o.drafter                                                ? ", drafter"
                     : o.content == gemma4::SynthOptions::Content::kProjector ? ", projector"
                     : o.content == gemma4::SynthOptions::Content::kBundle    ? ", with projector"
                                                                              : "";
  std::fprintf(stderr, "wrote %s (%s, %s%s) in %.1f s\n", out.c_str(), o.shape.c_str(),
               tensor_type_name(o.type).c_str(), what, s);
  return 0;
}

}  // namespace ug::cli
