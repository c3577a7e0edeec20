#include "cli/bench_mtp.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "model/gemma4/decoder.h"
#include "model/gemma4/drafter.h"
#include "runtime/sampler.h"
#include "runtime/speculative.h"
#include "util/error.h"

namespace ug::cli {

namespace {

using clock_type = std::chrono::steady_clock;
using nlohmann::ordered_json;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

// Prompt ids that avoid special tokens of the real vocabulary layout (ids below 256 hold them).
std::vector<int32_t> prompt_tokens(int n, int n_vocab) {
  std::vector<int32_t> t(size_t(std::max(n, 1)));
  t[0] = 2;  // <bos>
  uint64_t x = 0x9E3779B97F4A7C15ull;
  const int lo = std::min(512, n_vocab / 2);
  const int hi = std::min(n_vocab - 16, 200000);
  for (size_t i = 1; i < t.size(); ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    t[i] = int32_t(lo + int(x % uint64_t(hi - lo)));
  }
  return t;
}

struct RunResult {
  double seconds = 0;
  std::vector<int32_t> tokens;
  SpeculativeStats stats;
  std::vector<double> controller_acceptance;  // adaptive runs: the final estimates
};

// Conditional acceptance per draft position: accepted / tried (all drafts before were accepted).
std::vector<double> acceptance_by_position(const SpeculativeStats& s, int n) {
  std::vector<double> a;
  for (int i = 0; i < n && i < int(s.tried_at.size()); ++i) {
    if (s.tried_at[size_t(i)] == 0) break;
    a.push_back(double(s.accepted_at[size_t(i)]) / double(s.tried_at[size_t(i)]));
  }
  return a;
}

class Bench {
 public:
  explicit Bench(const MtpBenchOptions& o)
      : o_(o),
        model_(gemma4::load_model(o.model_path)),
        drafter_model_(gemma4::load_drafter(o.draft_path)),
        pool_(o.n_threads),
        decoder_(*model_, decoder_options(), pool_),
        drafter_(*drafter_model_, *model_, pool_),
        prompt_(o.prompt_ids.empty() ? prompt_tokens(o.n_prompt, model_->config.n_vocab)
                                     : o.prompt_ids) {}

  // One generation of n_gen tokens: prefill all prompt tokens but the last (not timed), then
  // rounds until n_gen tokens are out. drafter = null: plain decoding through the same loop.
  RunResult run(bool with_drafter, int depth, bool adaptive,
                const SpeculativeGenerator::DraftOverride& override_drafts) {
    decoder_.cache().clear();
    gemma4::Output out;
    decoder_.eval_tokens(std::vector<int32_t>(prompt_.begin(), prompt_.end() - 1),
                         gemma4::Outputs::kLast, &out);
    SamplerParams sp;
    sp.temperature = 0;
    Sampler sampler(
        sp, std::vector<int32_t>(model_->suppress_tokens.begin(), model_->suppress_tokens.end()));
    SpeculativeOptions so;
    so.draft_max = o_.draft_max;
    so.adaptive = adaptive;
    SpeculativeGenerator gen(decoder_, with_drafter ? &drafter_ : nullptr, sampler, so);
    if (override_drafts) gen.set_draft_override(override_drafts);
    gen.begin(prompt_, out.hidden);
    RunResult r;
    r.tokens.reserve(size_t(o_.n_gen));
    const auto t0 = clock_type::now();
    while (int(r.tokens.size()) < o_.n_gen) {
      const SpeculativeRound round = gen.round(depth, o_.n_gen - int(r.tokens.size()));
      r.tokens.insert(r.tokens.end(), round.emitted.begin(), round.emitted.end());
    }
    r.seconds = seconds_since(t0);
    r.stats = gen.stats();
    if (adaptive) {
      for (int i = 0; i < o_.draft_max; ++i) {
        r.controller_acceptance.push_back(gen.controller().acceptance(i));
      }
    }
    return r;
  }

  // Seconds of one target pass over n positions (the verify pass of k = n - 1 drafts) and of one
  // draft step, medians at the context the generation starts from.
  void measure_costs() {
    decoder_.cache().clear();
    gemma4::Output out;
    const std::vector<int32_t> head(prompt_.begin(), prompt_.end() - 1);
    decoder_.eval_tokens(head, gemma4::Outputs::kLast, &out);
    const std::vector<float> hidden = out.hidden;
    const int base = decoder_.n_past();
    const int n_max = std::min(o_.draft_max + 1, decoder_.cache().rollback_limit());
    verify_seconds_.assign(size_t(n_max + 1), 0);
    std::vector<int32_t> tokens(static_cast<size_t>(n_max));
    for (int i = 0; i < n_max; ++i) tokens[size_t(i)] = prompt_[size_t(i) % prompt_.size()];
    for (int n = 1; n <= n_max; ++n) {
      std::vector<double> t;
      const std::vector<int32_t> batch(tokens.begin(), tokens.begin() + n);
      for (int r = 0; r < o_.cost_reps; ++r) {
        const auto t0 = clock_type::now();
        decoder_.eval_tokens(batch, n > 1 ? gemma4::Outputs::kAll : gemma4::Outputs::kLast, &out);
        t.push_back(seconds_since(t0));
        decoder_.cache().truncate(base);
      }
      verify_seconds_[size_t(n)] = median(t);
    }
    std::vector<float> logits(size_t(model_->config.n_vocab)), next(hidden.size());
    std::vector<double> t;
    for (int r = 0; r < o_.cost_reps; ++r) {
      const auto t0 = clock_type::now();
      drafter_.step(decoder_.cache(), base, prompt_.back(), hidden.data(), logits.data(),
                    next.data());
      t.push_back(seconds_since(t0));
    }
    draft_seconds_ = median(t);
  }

  int run_all() {
    measure_costs();
    // Each repetition: plain first (it records the continuation), then every speculative mode.
    struct Mode {
      double rate;  // < 0: the drafter's own drafts
      int depth;    // -1: adaptive
    };
    std::vector<Mode> modes;
    const std::vector<double> rates =
        o_.accept_rates.empty() ? std::vector<double>{-1.0} : o_.accept_rates;
    const std::vector<int>& depths = o_.fixed_depths;
    for (double rate : rates) {
      for (int k : depths) modes.push_back({rate, k});
      if (o_.run_adaptive) modes.push_back({rate, -1});
    }
    std::vector<double> plain_ts;
    std::vector<std::vector<double>> mode_ts(modes.size());
    std::vector<SpeculativeStats> mode_stats(modes.size());
    std::vector<std::vector<double>> mode_ctl(modes.size());
    for (int rep = 0; rep < o_.reps; ++rep) {
      const RunResult plain = run(false, 0, false, nullptr);
      plain_ts.push_back(double(o_.n_gen) / plain.seconds);
      for (size_t m = 0; m < modes.size(); ++m) {
        const Mode& mode = modes[m];
        SpeculativeGenerator::DraftOverride ov;
        std::mt19937_64 rng(o_.seed * 1000003ull + uint64_t(mode.rate * 1000.0 + 0.5) * 131ull +
                            uint64_t(mode.depth + 1));
        const int V = model_->config.n_vocab;
        if (mode.rate >= 0) {
          ov = [&, rate = mode.rate](size_t n_history, int i, int32_t proposed) -> int32_t {
            const size_t c = n_history + size_t(i) - prompt_.size();
            if (c >= plain.tokens.size()) return proposed;
            const int32_t right = plain.tokens[c];
            const double u = double(rng() >> 11) * (1.0 / 9007199254740992.0);
            if (u < rate) return right;
            return int32_t((int64_t(right) + 1 + int64_t(rng() % uint64_t(V - 1))) % V);
          };
        }
        const RunResult r = run(true, mode.depth, mode.depth < 0, ov);
        check_identical(plain.tokens, r.tokens, mode.rate, mode.depth);
        mode_ts[m].push_back(double(o_.n_gen) / r.seconds);
        if (rep == 0) {
          mode_stats[m] = r.stats;
          mode_ctl[m] = r.controller_acceptance;
        }
      }
    }

    ordered_json j;
    j["model_filename"] = std::filesystem::path(o_.model_path).filename().string();
    j["drafter_filename"] = std::filesystem::path(o_.draft_path).filename().string();
    j["cpu_info"] = kernels::active_target();
    j["n_threads"] = o_.n_threads;
    j["n_prompt"] = int(prompt_.size());
    j["n_gen"] = o_.n_gen;
    j["repetitions"] = o_.reps;
    ordered_json cost;
    const double step = verify_seconds_[1];
    cost["decode_step_s"] = step;
    cost["draft_step_s"] = draft_seconds_;
    cost["draft_step_per_decode_step"] = draft_seconds_ / step;
    ordered_json verify = ordered_json::array();
    for (size_t n = 2; n < verify_seconds_.size(); ++n) {
      verify.push_back({{"k", int(n) - 1},
                        {"positions", int(n)},
                        {"seconds", verify_seconds_[n]},
                        {"per_decode_step", verify_seconds_[n] / step}});
    }
    cost["verify"] = verify;
    j["cost"] = cost;
    const double plain_avg = mean(plain_ts);
    j["plain"] = {{"avg_ts", plain_avg}, {"samples_ts", plain_ts}};
    ordered_json runs = ordered_json::array();
    for (size_t m = 0; m < modes.size(); ++m) {
      const SpeculativeStats& s = mode_stats[m];
      ordered_json r;
      r["accept_rate"] = modes[m].rate >= 0 ? ordered_json(modes[m].rate) : ordered_json();
      r["mode"] = modes[m].depth < 0 ? "adaptive" : "k=" + std::to_string(modes[m].depth);
      r["avg_ts"] = mean(mode_ts[m]);
      r["samples_ts"] = mode_ts[m];
      r["ratio"] = mean(mode_ts[m]) / plain_avg;
      r["rounds"] = s.rounds;
      r["drafted"] = s.drafted;
      r["accepted"] = s.accepted;
      r["tokens_per_round"] = s.rounds ? double(s.emitted) / double(s.rounds) : 0.0;
      r["acceptance"] = acceptance_by_position(s, o_.draft_max);
      ordered_json chosen = ordered_json::object();
      for (size_t k = 0; k < s.rounds_at_depth.size(); ++k) {
        if (s.rounds_at_depth[k]) chosen[std::to_string(k)] = s.rounds_at_depth[k];
      }
      r["k_chosen"] = chosen;
      if (!mode_ctl[m].empty()) r["controller_acceptance"] = mode_ctl[m];
      runs.push_back(r);
    }
    j["runs"] = runs;
    if (o_.format == "json") {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      print_table(j);
    }
    return 0;
  }

 private:
  gemma4::DecoderOptions decoder_options() const {
    gemma4::DecoderOptions d;
    d.n_ctx = o_.n_prompt + o_.n_gen + o_.draft_max + 16;
    d.n_ubatch = o_.n_ubatch;
    d.cache_type = o_.cache_type;
    return d;
  }

  void check_identical(const std::vector<int32_t>& plain, const std::vector<int32_t>& spec,
                       double rate, int depth) const {
    for (size_t i = 0; i < plain.size(); ++i) {
      if (i >= spec.size() || spec[i] != plain[i]) {
        std::string mode = depth < 0 ? "adaptive" : "k=" + std::to_string(depth);
        if (rate >= 0) mode += ", accept " + std::to_string(rate);
        throw Error("bench: speculative output (" + mode +
                    ") differs from plain greedy at generated token " + std::to_string(i) + ": " +
                    std::to_string(i < spec.size() ? spec[i] : -1) + " instead of " +
                    std::to_string(plain[i]));
      }
    }
  }

  static void print_table(const ordered_json& j) {
    const ordered_json& c = j["cost"];
    std::printf("MTP: %s + %s, CPU %s, %d threads, prompt %d, %d tokens, %d repetition(s)\n\n",
                j["model_filename"].get<std::string>().c_str(),
                j["drafter_filename"].get<std::string>().c_str(),
                j["cpu_info"].get<std::string>().c_str(), j["n_threads"].get<int>(),
                j["n_prompt"].get<int>(), j["n_gen"].get<int>(), j["repetitions"].get<int>());
    std::printf("cost (median): decode step %.2f ms; draft step %.2f ms = %.3f x decode step\n",
                c["decode_step_s"].get<double>() * 1e3, c["draft_step_s"].get<double>() * 1e3,
                c["draft_step_per_decode_step"].get<double>());
    std::printf("verify k+1 positions / decode step:");
    for (const auto& v : c["verify"]) {
      std::printf(" k=%d %.2f", v["k"].get<int>(), v["per_decode_step"].get<double>());
    }
    std::printf("\n\n");
    std::printf(
        "| accept | mode | t/s | x plain | tokens/round | acceptance by draft position | "
        "k chosen (rounds) |\n");
    std::printf("| --- | --- | ---: | ---: | ---: | --- | --- |\n");
    std::printf("| - | plain | %.2f | 1.00 | 1.00 | - | - |\n", j["plain"]["avg_ts"].get<double>());
    for (const auto& r : j["runs"]) {
      std::string acc, chosen;
      for (const auto& a : r["acceptance"]) {
        char b[16];
        std::snprintf(b, sizeof b, "%s%.2f", acc.empty() ? "" : " ", a.get<double>());
        acc += b;
      }
      for (const auto& [k, n] : r["k_chosen"].items()) {
        chosen += (chosen.empty() ? "" : " ") + k + ":" + std::to_string(n.get<int64_t>());
      }
      char rate[16] = "drafter";
      if (!r["accept_rate"].is_null()) {
        std::snprintf(rate, sizeof rate, "%.2f", r["accept_rate"].get<double>());
      }
      std::printf("| %s | %s | %.2f | %.2f | %.2f | %s | %s |\n", rate,
                  r["mode"].get<std::string>().c_str(), r["avg_ts"].get<double>(),
                  r["ratio"].get<double>(), r["tokens_per_round"].get<double>(),
                  acc.empty() ? "-" : acc.c_str(), chosen.c_str());
    }
  }

  MtpBenchOptions o_;
  std::unique_ptr<gemma4::Model> model_;
  std::unique_ptr<gemma4::DrafterModel> drafter_model_;
  ThreadPool pool_;
  gemma4::Decoder decoder_;
  gemma4::Drafter drafter_;
  std::vector<int32_t> prompt_;
  std::vector<double> verify_seconds_;
  double draft_seconds_ = 0;
};

}  // namespace

int bench_mtp(const MtpBenchOptions& options) {
  if (options.n_prompt < 2 || options.n_gen < 1 || options.reps < 1 || options.n_threads < 1 ||
      options.cost_reps < 1) {
    throw Error("bench: with --draft, -p must be >= 2, -n, -r and -t >= 1");
  }
  if (options.draft_max < 1 || options.draft_max > 16) {
    throw Error("bench: --draft-max must be in [1, 16]");
  }
  for (int k : options.fixed_depths) {
    if (k < 1 || k > options.draft_max)
      throw Error("bench: --draft-k: depths must be in [1, draft-max]");
  }
  for (double r : options.accept_rates) {
    if (!(r >= 0 && r <= 1)) throw Error("bench: --draft-accept rates must be in [0, 1]");
  }
  Bench b(options);
  return b.run_all();
}

}  // namespace ug::cli
