// `unigemma bundle`: one GGUF with the text model and the multimodal projector.
#include <chrono>
#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "model/gemma4/bundle.h"
#include "util/error.h"

namespace ug::cli {

int cmd_bundle(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h"});
  if (args.has("--help") || args.has("-h")) {
    std::puts(
        "usage: unigemma bundle -m TEXT.gguf --mmproj MMPROJ.gguf -o OUT.gguf\n"
        "  Writes one GGUF holding the text model and the projector tensors (docs/multimodal.md);\n"
        "  run/chat then need no --mmproj.");
    return 0;
  }
  args.reject_unknown({"-m", "--model", "--mmproj", "-o", "--output"});
  const std::string text = args.get({"-m", "--model"});
  const std::string mmproj = args.get({"--mmproj"});
  const std::string out = args.get({"-o", "--output"});
  if (text.empty() || mmproj.empty() || out.empty()) {
    throw Error("bundle: needs -m TEXT.gguf --mmproj MMPROJ.gguf -o OUT.gguf");
  }
  const auto t0 = std::chrono::steady_clock::now();
  gemma4::write_bundle(text, mmproj, out);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "wrote %s in %.1f s\n", out.c_str(), s);
  return 0;
}

}  // namespace ug::cli
