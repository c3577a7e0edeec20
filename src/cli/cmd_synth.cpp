#include <chrono>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "model/gemma4/synth.h"
#include "util/error.h"

namespace ug::cli {

int cmd_synth(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h", "--drafter"});
  if (args.has("--help") || args.has("-h")) {
    std::puts(
        "usage: unigemma synth --shape 12b|tiny --type TYPE -o FILE [--seed N] [--drafter]\n"
        "  TYPE: f32 f16 bf16 q8_0 q4_0 q4_k q5_k q6_k (q4_0 stores the tied embedding as Q6_K)\n"
        "  --drafter  write the shape's MTP drafter (gemma4-assistant, spec 4) instead of the "
        "model");
    return 0;
  }
  args.reject_unknown({"--shape", "--type", "-o", "--output", "--seed", "--drafter"});
  gemma4::SynthOptions o;
  o.shape = args.get({"--shape"}, "tiny");
  const std::string type = args.get({"--type"}, "q8_0");
  if (!parse_tensor_type(type, &o.type)) throw Error("synth: unknown --type '" + type + "'");
  o.seed = uint64_t(args.get_int({"--seed"}, 1234));
  o.drafter = args.has("--drafter");
  const std::string out = args.get({"-o", "--output"});
  if (out.empty()) throw Error("synth: missing -o FILE");
  const auto t0 = std::chrono::steady_clock::now();
  gemma4::write_synthetic_model(o, out);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "wrote %s (%s%s, %s) in %.1f s\n", out.c_str(), o.shape.c_str(),
               o.drafter ? " drafter" : "", tensor_type_name(o.type).c_str(), s);
  return 0;
}

}  // namespace ug::cli
