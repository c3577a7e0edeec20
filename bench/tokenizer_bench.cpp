// Tokenizer load time and encode/decode throughput on text files of your choice.
//
// Built as build/<preset>/tokenizer_bench:
//   build/release/tokenizer_bench VOCAB.gguf FILE... [--reps 3] [--special]
// VOCAB.gguf: any gemma4 GGUF (e.g. ../shared/oracle/tokenizer/ggml-vocab-gemma4.gguf). Each FILE
// is encoded as one input (newlines included); --special parses special-token texts.
// Reports CPU time as well as wall time: on a shared machine the CPU figure is the stable one.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

double cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  int reps = 3;
  bool special = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--special") == 0) {
      special = true;
    } else {
      files.push_back(argv[i]);
    }
  }
  if (files.size() < 2) {
    std::fprintf(stderr, "usage: %s VOCAB.gguf FILE... [--reps N] [--special]\n", argv[0]);
    return ug::kExitBadInput;
  }
  try {
    const double c0 = cpu_seconds(), w0 = wall_seconds();
    auto gguf = ug::gguf::File::open(files[0]);
    const ug::Tokenizer tok = ug::Tokenizer::from_gguf(*gguf);
    std::printf("load %s: %d tokens, %zu merges: %.0f ms CPU, %.0f ms wall\n", files[0].c_str(),
                tok.vocab_size(), tok.data().merges.size(), (cpu_seconds() - c0) * 1e3,
                (wall_seconds() - w0) * 1e3);
    for (size_t f = 1; f < files.size(); ++f) {
      std::ifstream in(files[f], std::ios::binary);
      if (!in) throw ug::Error(files[f] + ": cannot open");
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string text = ss.str();
      const double mb = double(text.size()) / 1e6;
      for (int r = 0; r < reps; ++r) {
        const double ce = cpu_seconds(), we = wall_seconds();
        const std::vector<int32_t> ids = tok.encode(text, {.parse_special = special});
        const double cd = cpu_seconds(), wd = wall_seconds();
        const std::string back = tok.decode(ids, true);
        const double cend = cpu_seconds();
        std::printf(
            "%s: %.2f MB -> %zu tokens; encode %.1f MB/s CPU (%.1f wall); decode %.1f MB/s "
            "CPU\n",
            files[f].c_str(), mb, ids.size(), mb / (cd - ce), mb / (wd - we), mb / (cend - cd));
      }
    }
  } catch (const ug::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return ug::kExitBadInput;
  }
  return 0;
}
