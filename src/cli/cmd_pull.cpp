// `unigemma pull`, `ls`, `rm`: the local model cache fed from a Hugging Face-style hub.
#include <unistd.h>

#include <cstdio>

#include "cli/args.h"
#include "cli/commands.h"
#include "runtime/hub.h"
#include "util/error.h"

namespace ug::cli {

int cmd_pull(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h", "--no-progress"});
  if (args.has("--help") || args.has("-h") || args.positional().size() != 1) {
    std::puts(
        "usage: unigemma pull OWNER/NAME[:FILE|:TAG] [--no-progress]\n"
        "  Downloads the repo's model GGUF (FILE, a quantization TAG such as Q4_K_M, or the only "
        "/\n"
        "  the Q4_K_M one) plus its mmproj and assistant (drafter) GGUFs into the cache, resuming\n"
        "  interrupted downloads and verifying each file's SHA-256 against the hub. A repo with\n"
        "  only safetensors is fetched as a folder (loadable, or `unigemma convert` it).\n"
        "  Hub: $UG_HF_ENDPOINT (default https://huggingface.co), token $HF_TOKEN.\n"
        "  Cache: $UG_CACHE_DIR, else $XDG_CACHE_HOME/unigemma/models, else "
        "~/.cache/unigemma/models.\n"
        "  run/chat accept -m hf:OWNER/NAME[:FILE] and pull on first use.");
    return args.has("--help") || args.has("-h") ? 0 : 2;
  }
  args.reject_unknown({"--no-progress"});
  hub::PullOptions o;
  o.progress = !args.has("--no-progress") && isatty(STDERR_FILENO);
  o.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  const hub::PulledModel m = hub::pull(hub::parse_spec(args.positional()[0]), o);
  std::printf("model      %s\n", m.model.c_str());
  if (!m.mmproj.empty()) std::printf("mmproj     %s\n", m.mmproj.c_str());
  if (!m.assistant.empty()) std::printf("assistant  %s\n", m.assistant.c_str());
  return 0;
}

int cmd_ls(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h"});
  if (args.has("--help") || args.has("-h")) {
    std::puts(
        "usage: unigemma ls\n  Lists the model cache (repo, file, size; partial downloads "
        "marked).");
    return 0;
  }
  args.reject_unknown({});
  const auto files = hub::list_cache();
  if (files.empty()) {
    std::printf("cache %s is empty\n", hub::cache_dir().c_str());
    return 0;
  }
  for (const auto& f : files) {
    std::printf("%-40s %-50s %10.1f MB%s\n", f.repo.c_str(), f.file.c_str(), double(f.bytes) / 1e6,
                f.partial ? "  (partial download)" : "");
  }
  return 0;
}

int cmd_rm(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h"});
  if (args.has("--help") || args.has("-h") || args.positional().empty()) {
    std::puts(
        "usage: unigemma rm OWNER/NAME[:FILE] ...\n  Removes a repo (or one file) from the cache.");
    return args.has("--help") || args.has("-h") ? 0 : 2;
  }
  args.reject_unknown({});
  for (const auto& spec : args.positional()) {
    for (const auto& p : hub::remove_from_cache(spec)) std::printf("removed %s\n", p.c_str());
  }
  return 0;
}

}  // namespace ug::cli
