#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/bench_mtp.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "kernels/kernels.h"
#include "model/gemma4/decoder.h"
#include "util/error.h"

namespace ug::cli {

namespace {

struct Result {
  int n_prompt = 0;
  int n_gen = 0;
  std::vector<double> ts;  // tokens/s per repetition
  std::vector<double> ns;  // nanoseconds per repetition
  double avg_ts() const {
    double s = 0;
    for (double x : ts) s += x;
    return ts.empty() ? 0 : s / double(ts.size());
  }
  double stddev_ts() const {
    if (ts.size() < 2) return 0;
    const double m = avg_ts();
    double s = 0;
    for (double x : ts) s += (x - m) * (x - m);
    return std::sqrt(s / double(ts.size() - 1));
  }
  double avg_ns() const {
    double s = 0;
    for (double x : ns) s += x;
    return ns.empty() ? 0 : s / double(ns.size());
  }
};

std::vector<int32_t> bench_tokens(int n, int n_vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (auto& v : t) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    v = int32_t(x % uint64_t(n_vocab));
  }
  return t;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h"});
  if (args.has("--help") || args.has("-h")) {
    std::puts(
        "usage: unigemma bench -m MODEL [-p 512] [-n 128] [-t THREADS] [-r 3] [-o md|json]\n"
        "                      [--cache-type f16] [--ubatch 512]\n"
        "  pp<N>: N prompt tokens in one batch; tg<N>: N tokens decoded one at a time.\n"
        "  JSON records use llama-bench's field names (n_prompt, n_gen, avg_ts, stddev_ts, ...).\n"
        "MTP speculative decoding (docs/mtp.md):\n"
        "  --draft FILE            compare plain greedy decoding with draft-verify decoding:\n"
        "                          fixed k = 1..draft-max and adaptive; -p is then the prompt\n"
        "                          length (default 32), -n the tokens generated per run\n"
        "  --draft-max N           deepest fixed k and adaptive's maximum (default 4)\n"
        "  --draft-k LIST          modes to run, e.g. adaptive or 1,2,adaptive (default: "
        "1..max,adaptive)\n"
        "  --draft-accept R,R,...  controlled acceptance: drafts taken from the recorded plain\n"
        "                          continuation, each right with probability R (the drafter\n"
        "                          still runs for its cost), e.g. 0,0.5,0.8,1\n"
        "  --seed N                seed of the controlled acceptance (default 1)\n"
        "  --prompt TEXT           prompt: TEXT as one user turn in the model's chat template\n"
        "                          (default: -p pseudo-random token ids)\n"
        "  --cost-reps N           timings per cost measurement, median reported (default 5)");
    return 0;
  }
  args.reject_unknown({"-m", "--model", "-p", "-n", "-t", "--threads", "-r", "--repetitions", "-o",
                       "--output", "--cache-type", "--ubatch", "--draft", "--draft-max",
                       "--draft-accept", "--seed", "--cost-reps", "--draft-k", "--prompt"});
  const std::string path = args.get({"-m", "--model"});
  if (path.empty()) throw Error("bench: missing -m MODEL");
  const int n_prompt = args.get_int({"-p"}, 512);
  const int n_gen = args.get_int({"-n"}, 128);
  const int n_threads = args.get_int({"-t", "--threads"}, default_threads());
  const int reps = args.get_int({"-r", "--repetitions"}, 3);
  const std::string format = args.get({"-o", "--output"}, "md");
  const int n_ubatch = args.get_int({"--ubatch"}, 512);
  const std::string ct = args.get({"--cache-type"}, "f16");
  TensorType cache_type;
  if (!parse_tensor_type(ct, &cache_type)) throw Error("unknown --cache-type '" + ct + "'");
  if (n_prompt < 0 || n_gen < 0 || reps <= 0 || n_threads <= 0) {
    throw Error("bench: -p/-n must be >= 0, -r and -t > 0");
  }
  if (format != "md" && format != "json") throw Error("bench: -o must be md or json");
  if (args.has("--draft")) {
    MtpBenchOptions mo;
    mo.model_path = path;
    mo.draft_path = args.get({"--draft"});
    mo.n_prompt = args.get_int({"-p"}, 32);
    if (args.has("--prompt")) {
      mo.prompt_ids =
          chat_turn_ids(*load_model_and_tokenizer(path).tokenizer, args.get({"--prompt"}));
      mo.n_prompt = int(mo.prompt_ids.size());
    }
    mo.n_gen = n_gen;
    mo.n_threads = n_threads;
    mo.reps = reps;
    mo.draft_max = args.get_int({"--draft-max"}, 4);
    mo.cost_reps = args.get_int({"--cost-reps"}, 5);
    mo.format = format;
    mo.cache_type = cache_type;
    mo.n_ubatch = n_ubatch;
    mo.seed = uint64_t(args.get_int({"--seed"}, 1));
    const std::string rates = args.get({"--draft-accept"});
    size_t pos = 0;
    while (!rates.empty() && pos <= rates.size()) {
      const size_t comma = std::min(rates.find(',', pos), rates.size());
      const std::string item = rates.substr(pos, comma - pos);
      char* end = nullptr;
      const double r = std::strtod(item.c_str(), &end);
      if (item.empty() || *end)
        throw Error("bench: --draft-accept: '" + item + "' is not a number");
      mo.accept_rates.push_back(r);
      pos = comma + 1;
    }
    const std::string modes = args.get({"--draft-k"});
    if (modes.empty()) {
      for (int k = 1; k <= mo.draft_max; ++k) mo.fixed_depths.push_back(k);
    } else {
      mo.run_adaptive = false;
      size_t at = 0;
      while (at <= modes.size()) {
        const size_t comma = std::min(modes.find(',', at), modes.size());
        const std::string item = modes.substr(at, comma - at);
        if (item == "adaptive") {
          mo.run_adaptive = true;
        } else {
          char* end = nullptr;
          const long k = std::strtol(item.c_str(), &end, 10);
          if (item.empty() || *end) {
            throw Error("bench: --draft-k: '" + item + "' is neither a depth nor adaptive");
          }
          mo.fixed_depths.push_back(int(k));
        }
        at = comma + 1;
      }
    }
    const int rc = bench_mtp(mo);
    struct rusage ru {};
    getrusage(RUSAGE_SELF, &ru);
    std::fprintf(stderr, "peak RSS: %.1f MiB\n", double(ru.ru_maxrss) / 1024.0);
    return rc;
  }

  auto model = gemma4::load_model(path);
  const gemma4::Config& c = model->config;
  ThreadPool pool(n_threads);
  gemma4::DecoderOptions dopt;
  dopt.n_ctx = std::max(16, std::max(n_prompt, n_gen + 1));
  dopt.n_ubatch = n_ubatch;
  dopt.cache_type = cache_type;
  gemma4::Decoder decoder(*model, dopt, pool);
  gemma4::Output out;

  // Warm-up: touch the weights once so the first repetition does not pay for page faults.
  decoder.eval_tokens({2}, gemma4::Outputs::kLast, &out);

  std::vector<Result> results;
  using clock = std::chrono::steady_clock;
  if (n_prompt > 0) {
    Result r;
    r.n_prompt = n_prompt;
    const auto tokens = bench_tokens(n_prompt, c.n_vocab);
    for (int i = 0; i < reps; ++i) {
      decoder.cache().clear();
      const auto t0 = clock::now();
      decoder.eval_tokens(tokens, gemma4::Outputs::kLast, &out);
      const double s = std::chrono::duration<double>(clock::now() - t0).count();
      r.ns.push_back(s * 1e9);
      r.ts.push_back(n_prompt / s);
    }
    results.push_back(r);
  }
  if (n_gen > 0) {
    Result r;
    r.n_gen = n_gen;
    const auto tokens = bench_tokens(n_gen, c.n_vocab);
    for (int i = 0; i < reps; ++i) {
      decoder.cache().clear();
      const auto t0 = clock::now();
      for (int j = 0; j < n_gen; ++j)
        decoder.eval_tokens({tokens[size_t(j)]}, gemma4::Outputs::kLast, &out);
      const double s = std::chrono::duration<double>(clock::now() - t0).count();
      r.ns.push_back(s * 1e9);
      r.ts.push_back(n_gen / s);
    }
    results.push_back(r);
  }

  const std::string filename = std::filesystem::path(path).filename().string();
  const double size_gib = double(model->weight_bytes) / (1024.0 * 1024 * 1024);
  uint64_t n_params = uint64_t(model->token_embd.rows) * uint64_t(model->token_embd.cols);
  for (const auto& lw : model->layers) {
    for (const auto* m : {&lw.attn_q, &lw.attn_k, &lw.attn_v, &lw.attn_output, &lw.ffn_gate,
                          &lw.ffn_up, &lw.ffn_down}) {
      if (m->data) n_params += uint64_t(m->rows) * uint64_t(m->cols);
    }
  }
  if (format == "json") {
    std::printf("[\n");
    for (size_t i = 0; i < results.size(); ++i) {
      const Result& r = results[i];
      std::printf(
          "  {\"build_commit\": \"unigemma\", \"cpu_info\": \"%s\", \"model_filename\": \"%s\", "
          "\"model_type\": \"gemma4 %d layers\", \"model_size\": %llu, \"model_n_params\": %llu, "
          "\"n_threads\": %d, \"type_k\": \"%s\", \"type_v\": \"%s\", \"n_ubatch\": %d, "
          "\"n_prompt\": %d, \"n_gen\": %d, \"avg_ns\": %.0f, \"avg_ts\": %.6f, "
          "\"stddev_ts\": %.6f, \"samples_ts\": [",
          kernels::active_target(), filename.c_str(), c.n_layer,
          (unsigned long long)model->weight_bytes, (unsigned long long)n_params, n_threads,
          ct.c_str(), ct.c_str(), n_ubatch, r.n_prompt, r.n_gen, r.avg_ns(), r.avg_ts(),
          r.stddev_ts());
      for (size_t j = 0; j < r.ts.size(); ++j) std::printf("%s%.6f", j ? ", " : "", r.ts[j]);
      std::printf("]}%s\n", i + 1 < results.size() ? "," : "");
    }
    std::printf("]\n");
  } else {
    std::printf("| model | size | params | backend | threads | test | t/s |\n");
    std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    for (const Result& r : results) {
      const std::string test =
          r.n_prompt ? "pp" + std::to_string(r.n_prompt) : "tg" + std::to_string(r.n_gen);
      std::printf("| %s | %.2f GiB | %.2f B | CPU %s | %d | %s | %.2f ± %.2f |\n", filename.c_str(),
                  size_gib, double(n_params) / 1e9, kernels::active_target(), n_threads,
                  test.c_str(), r.avg_ts(), r.stddev_ts());
    }
  }
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  std::fprintf(stderr, "peak RSS: %.1f MiB\n", double(ru.ru_maxrss) / 1024.0);
  return 0;
}

}  // namespace ug::cli
