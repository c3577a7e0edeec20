#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <thread>

#include "cli/commands.h"
#include "util/error.h"

namespace ug::cli {
int default_threads() {
  return int(std::max(1u, std::thread::hardware_concurrency()));
}
}  // namespace ug::cli

namespace {

const char* kUsage = R"(unigemma — Gemma 4 12B Unified on your CPU

usage: unigemma <command> [options]

commands:
  run [-m MODEL] -p TEXT    one-shot chat answer (--raw: plain continuation, greedy);
                            without -m: the bundled unigemma-nano
  chat [-m MODEL]           interactive chat (line editing, history, /help)
  template -m MODEL --conversation FILE.json
                            print the rendered chat prompt
  tokenize -m MODEL TEXT    token ids (and pieces with --pieces)
  detokenize -m MODEL IDS   text of comma/space-separated ids
  info MODEL [--ctx N]      architecture, tensor types, sizes and memory needed
  bench -m MODEL            prompt and decode speed (llama-bench-like table)
  synth --shape 12b|tiny --type q4_0|q8_0|... -o FILE
                            write a random-weight model with the exact tensor list
  bundle -m TEXT --mmproj P -o FILE
                            one GGUF with the text model and the multimodal projector
  check-oracle PATH         run reference cases from the oracle pack
  convert HF_DIR -o OUT.gguf [--type bf16|q8_0|q4_k_m|...] [--bundle]
                            Hugging Face safetensors folder to GGUF (+ mmproj)
  quantize IN.gguf OUT.gguf TYPE
                            re-encode a GGUF (q8_0, q4_0, q4_k_m, q5_k_m, q6_k, ...)
  pull OWNER/NAME[:FILE]    download a model (+ mmproj, drafter) from the hub into the cache;
                            run/chat also take -m hf:OWNER/NAME
  ls / rm OWNER/NAME[:FILE] list / remove cached models
  serve [-m MODEL]          OpenAI- and Ollama-compatible HTTP server (127.0.0.1:8080)
  eval [-m MODEL] SET_DIR   accuracy per task on an eval set (training/evaluate.py)
  help                      this text

Run `unigemma <command> --help` for the options of a command.
)";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "help") || !std::strcmp(argv[1], "--help") ||
      !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string cmd = argv[1];
  try {
    if (cmd == "run") return ug::cli::cmd_run(argc, argv);
    if (cmd == "chat") return ug::cli::cmd_chat(argc, argv);
    if (cmd == "template") return ug::cli::cmd_template(argc, argv);
    if (cmd == "tokenize") return ug::cli::cmd_tokenize(argc, argv);
    if (cmd == "detokenize") return ug::cli::cmd_detokenize(argc, argv);
    if (cmd == "info") return ug::cli::cmd_info(argc, argv);
    if (cmd == "bench") return ug::cli::cmd_bench(argc, argv);
    if (cmd == "synth") return ug::cli::cmd_synth(argc, argv);
    if (cmd == "bundle") return ug::cli::cmd_bundle(argc, argv);
    if (cmd == "check-oracle") return ug::cli::cmd_check_oracle(argc, argv);
    if (cmd == "convert") return ug::cli::cmd_convert(argc, argv);
    if (cmd == "quantize") return ug::cli::cmd_quantize(argc, argv);
    if (cmd == "pull") return ug::cli::cmd_pull(argc, argv);
    if (cmd == "ls") return ug::cli::cmd_ls(argc, argv);
    if (cmd == "rm") return ug::cli::cmd_rm(argc, argv);
    if (cmd == "serve") return ug::cli::cmd_serve(argc, argv);
    if (cmd == "eval") return ug::cli::cmd_eval(argc, argv);
    std::fprintf(stderr, "error: unknown command '%s' (see unigemma help)\n", cmd.c_str());
    return ug::kExitBadInput;
  } catch (const ug::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return ug::kExitBadInput;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 1;
  }
}
