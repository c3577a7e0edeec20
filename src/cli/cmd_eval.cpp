// `unigemma eval`: task accuracy of a model on an eval set (runtime/eval.h), next to the reference
// implementation's accuracy on the same examples when the set carries its outputs.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <unistd.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/eval.h"
#include "util/error.h"

namespace ug::cli {

namespace {

std::set<std::string> split_list(const std::string& s) {
  std::set<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!item.empty()) out.insert(item);
  }
  return out;
}

std::string percent(int k, int n) {
  if (n == 0) return "-";
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%.1f%%", 100.0 * k / n);
  return buf;
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h"});
  if (args.has("--help") || args.has("-h")) {
    std::printf(
        "usage: unigemma eval [-m MODEL] SET_DIR [--tasks a,b] [--limit N] [--json FILE]\n"
        "  Runs every example of SET_DIR/examples.jsonl (written by training/evaluate.py\n"
        "  --dump-set) through the model, greedy unless --temp is given, and prints accuracy per\n"
        "  task; when the set carries a reference implementation's outputs, also its accuracy\n"
        "  and how many outputs are the same.\n"
        "  --tasks a,b              only these tasks\n"
        "  --limit N                at most N examples per task\n"
        "  --json FILE              per-example results and the per-task summary\n"
        "  -n N                     most tokens per answer (default 48)\n"
        "%s%s",
        kGenerationHelp, kMediaHelp);
    return 0;
  }
  if (args.positional().size() != 1) {
    throw Error("eval: expected one eval set folder (unigemma eval [-m MODEL] SET_DIR; --help)");
  }
  std::vector<std::string> known = kGenerationOptions;
  known.insert(known.end(), kMediaOptions.begin(), kMediaOptions.end());
  for (const char* k : {"--tasks", "--limit", "--json"}) known.push_back(k);
  args.reject_unknown(known);
  for (const char* k : {"--image", "--audio", "--video", "--system"}) {
    if (args.has(k))
      throw Error(std::string("eval: option ") + k + " does not apply (the set has the inputs)");
  }
  const std::set<std::string> tasks = split_list(args.get({"--tasks"}));
  const int limit = args.get_int({"--limit"}, 0);
  if (limit < 0) throw Error("option --limit: must be >= 0");
  std::vector<EvalExample> examples;
  {
    std::map<std::string, int> per_task;
    for (EvalExample& ex : load_eval_set(args.positional()[0])) {
      if (!tasks.empty() && !tasks.count(ex.task)) continue;
      if (limit > 0 && per_task[ex.task]++ >= limit) continue;
      examples.push_back(std::move(ex));
    }
  }
  if (examples.empty())
    throw Error("eval: no examples of the tasks given in " + args.positional()[0]);

  LoadedModel m = load_model_and_tokenizer(model_path_from_args(args, "eval"));
  ChatOptions o = chat_options_from_args(args, m);
  if (!args.has("--temp")) o.sampling.temperature = 0;
  o.max_tokens = args.get_int({"-n", "--n-predict"}, 48);
  ThreadPool pool(threads_from_args(args));
  ChatSession session(*m.model, *m.tokenizer, pool, o);
  const std::unique_ptr<gemma4::Projector> projector = projector_from_args(args, m);
  session.set_projector(projector.get(), media_options_from_args(args, projector.get()));
  const LoadedDrafter drafter = attach_drafter_from_args(args, m, pool, session);

  const bool tty = isatty(STDERR_FILENO);
  const std::vector<EvalResult> results = run_eval(session, examples, [&](int done, int total) {
    if (tty) std::fprintf(stderr, "\r%d/%d examples", done, total);
  });
  if (tty) std::fputs("\n", stderr);

  const auto summary = summarize_eval(results);
  std::printf("%-14s %5s %9s %10s %9s %12s\n", "task", "n", "engine", "reference", "same",
              "valid calls");
  EvalTaskSummary all;
  for (const auto& [task, s] : summary) {
    std::printf(
        "%-14s %5d %9s %10s %9s %12s\n", task.c_str(), s.n, percent(s.correct, s.n).c_str(),
        percent(s.reference_correct, s.with_reference).c_str(),
        s.with_reference
            ? (std::to_string(s.same_as_reference) + "/" + std::to_string(s.with_reference)).c_str()
            : "-",
        s.calls_expected
            ? (std::to_string(s.calls_valid) + "/" + std::to_string(s.calls_expected)).c_str()
            : "-");
    all.n += s.n;
    all.correct += s.correct;
    all.with_reference += s.with_reference;
    all.reference_correct += s.reference_correct;
    all.same_as_reference += s.same_as_reference;
  }
  std::printf("%-14s %5d %9s %10s %9s\n", "all", all.n, percent(all.correct, all.n).c_str(),
              percent(all.reference_correct, all.with_reference).c_str(),
              all.with_reference ? (std::to_string(all.same_as_reference) + "/" +
                                    std::to_string(all.with_reference))
                                       .c_str()
                                 : "-");

  // Decode speed over all answers, and with a drafter what MTP did (greedy output is the same
  // with and without it; compare `--draft none`).
  SpeculativeStats spec;
  double gen_seconds = 0;
  long gen_tokens = 0;
  for (const EvalResult& r : results) {
    add_speculative_stats(spec, r.speculative);
    gen_seconds += r.generate_seconds;
    gen_tokens += r.generated_tokens;
  }
  std::printf("\ngenerated %ld tokens, %.1f tokens/s", gen_tokens,
              gen_tokens / std::max(gen_seconds, 1e-9));
  if (spec.rounds > 0) {
    std::printf("; MTP: %lld rounds, %.2f tokens/round, %lld/%lld drafts accepted (%.1f%%)",
                static_cast<long long>(spec.rounds), double(spec.emitted) / double(spec.rounds),
                static_cast<long long>(spec.accepted), static_cast<long long>(spec.drafted),
                100.0 * double(spec.accepted) / double(std::max<int64_t>(spec.drafted, 1)));
    std::printf("; acceptance by draft position:");
    for (size_t i = 0; i < spec.tried_at.size() && spec.tried_at[i] > 0; ++i) {
      std::printf(" %.2f", double(spec.accepted_at[i]) / double(spec.tried_at[i]));
    }
  }
  std::printf("\n");

  const std::string json_path = args.get({"--json"});
  if (!json_path.empty()) {
    nlohmann::ordered_json j;
    j["model"] = m.model->path;
    j["tasks"] = nlohmann::ordered_json::object();
    for (const auto& [task, s] : summary) {
      nlohmann::ordered_json t{
          {"n", s.n}, {"correct", s.correct}, {"accuracy", s.n ? double(s.correct) / s.n : 0.0}};
      if (s.with_reference) {
        t["reference_correct"] = s.reference_correct;
        t["reference_accuracy"] = double(s.reference_correct) / s.with_reference;
        t["same_as_reference"] = s.same_as_reference;
      }
      if (s.calls_expected) {
        t["calls_expected"] = s.calls_expected;
        t["calls_valid"] = s.calls_valid;
      }
      j["tasks"][task] = t;
    }
    j["generated_tokens"] = gen_tokens;
    j["generate_seconds"] = gen_seconds;
    if (spec.rounds > 0) {
      nlohmann::ordered_json by_position = nlohmann::ordered_json::array();
      for (size_t i = 0; i < spec.tried_at.size() && spec.tried_at[i] > 0; ++i) {
        by_position.push_back(double(spec.accepted_at[i]) / double(spec.tried_at[i]));
      }
      j["mtp"] = {{"rounds", spec.rounds},
                  {"emitted", spec.emitted},
                  {"drafted", spec.drafted},
                  {"accepted", spec.accepted},
                  {"acceptance_by_position", by_position}};
    }
    j["examples"] = nlohmann::ordered_json::array();
    for (const EvalResult& r : results) {
      nlohmann::ordered_json e{{"index", r.index},
                               {"task", r.task},
                               {"output", r.output},
                               {"correct", r.correct},
                               {"generated_tokens", r.generated_tokens}};
      if (r.call_expected) e["tool_call_valid"] = r.tool_call_valid;
      if (r.has_reference) {
        e["reference_correct"] = r.reference_correct;
        e["same_as_reference"] = r.same_as_reference;
      }
      j["examples"].push_back(e);
    }
    std::ofstream out(json_path);
    if (!out) throw Error(json_path + ": cannot write");
    out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (!out) throw Error(json_path + ": write failed");
  }
  return 0;
}

}  // namespace ug::cli
