// `unigemma bench --draft FILE`: speculative decoding against plain decoding on the same machine,
// in the same process, with the output of every speculative run checked against plain greedy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/tensor_type.h"

namespace ug::cli {

struct MtpBenchOptions {
  std::string model_path, draft_path;
  int n_prompt = 32;  // prompt tokens before generation (not timed)
  // A real prompt (e.g. a chat turn rendered with the model's template); empty: n_prompt
  // pseudo-random ids.
  std::vector<int32_t> prompt_ids;
  int n_gen = 128;  // tokens generated per run
  int n_threads = 1;
  int reps = 1;
  int draft_max = 4;  // deepest fixed depth, and adaptive's maximum
  // Which speculative modes run: these fixed depths (each in 1..draft_max), and/or adaptive.
  std::vector<int> fixed_depths;
  bool run_adaptive = true;
  int cost_reps = 5;  // timings per cost measurement (the median is reported)
  std::string format = "md";
  TensorType cache_type = TensorType::F16;
  int n_ubatch = 512;
  // Controlled acceptance: for each rate, drafts come from the recorded plain continuation,
  // each draft position right with this probability (seeded); empty = the drafter's own drafts.
  std::vector<double> accept_rates;
  uint64_t seed = 1;
};

// Runs the benchmark and prints the table or JSON to stdout. Throws ug::Error when a speculative
// run's output differs from plain greedy output (which would be a correctness bug).
int bench_mtp(const MtpBenchOptions& options);

}  // namespace ug::cli
