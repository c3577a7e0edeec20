// `unigemma run`: one-shot chat answer, or with --raw a plain continuation of the prompt text.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "model/gemma4/decoder.h"
#include "runtime/chat_session.h"
#include "runtime/generate.h"
#include "runtime/speculative.h"
#include "util/error.h"

namespace ug::cli {

std::vector<int32_t> parse_id_list(const std::string& s) {
  std::vector<int32_t> ids;
  std::string item;
  std::stringstream ss(s);
  while (ss >> std::ws && std::getline(ss, item, ',')) {
    std::stringstream parts(item);
    std::string word;
    while (parts >> word) {
      char* end = nullptr;
      const long v = std::strtol(word.c_str(), &end, 10);
      if (*end || v < 0 || v > 0x7fffffff) throw Error("'" + word + "' is not a token id");
      ids.push_back(int32_t(v));
    }
  }
  if (ids.empty()) throw Error("no token ids given");
  return ids;
}

namespace {

// The array of an OpenAI-style "tools" field; each entry needs a function with a name.
nlohmann::ordered_json tools_from_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open the tools file");
  const auto j = nlohmann::ordered_json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(path + ": not valid JSON");
  if (!j.is_array()) throw Error(path + ": expected a JSON array of tool declarations");
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& t = j[i];
    const nlohmann::ordered_json* fn =
        t.is_object() && t.contains("function") ? &t["function"] : nullptr;
    if (!fn || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string()) {
      throw Error(path + ": tools[" + std::to_string(i) +
                  "]: expected {\"type\": \"function\", \"function\": {\"name\": ...}}");
    }
  }
  return j;
}

int run_raw(const Args& args, const LoadedModel& m, const std::vector<int32_t>& prompt,
            const ChatOptions& o) {
  if (int64_t(prompt.size()) + 1 > o.n_ctx) {
    throw Error("the prompt has " + std::to_string(prompt.size()) +
                " tokens, more than the context length " + std::to_string(o.n_ctx) +
                " allows (raise --ctx)");
  }
  ThreadPool pool(threads_from_args(args));
  const LoadedDrafter drafter = drafter_from_args(args, m, pool);
  gemma4::Decoder decoder(
      *m.model,
      gemma4::DecoderOptions{o.n_ctx, o.n_ubatch, o.cache_type, o.commit_kv, o.global_cache_type},
      pool);
  gemma4::Output out;
  ProgressBar bar("prompt");
  decoder.set_progress([&bar](int done, int total) { bar.update(done, total); });
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  // With a drafter the last prompt token is held back: the first round feeds it, and the round
  // structure needs the hidden state of the position before it.
  const bool speculative = drafter.drafter && prompt.size() >= 2;
  if (speculative) {
    decoder.eval_tokens(std::vector<int32_t>(prompt.begin(), prompt.end() - 1),
                        gemma4::Outputs::kLast, &out);
  } else {
    decoder.eval_tokens(prompt, gemma4::Outputs::kLast, &out);
  }
  bar.done();
  const auto t1 = clock::now();
  StreamDecoder stream(*m.tokenizer, /*render_special=*/true);
  GreedyOptions g;
  g.max_tokens = std::min(o.max_tokens, o.n_ctx - int(prompt.size()));
  g.suppress = m.model->suppress_tokens;
  g.stop = m.model->eog_tokens;
  g.on_token = [&](int32_t tok) {
    if (std::find(g.stop.begin(), g.stop.end(), tok) != g.stop.end()) return true;
    const std::string piece = stream.push(tok);
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  };
  std::vector<int32_t> generated;
  if (speculative && g.max_tokens > 0) {
    SamplerParams greedy;
    greedy.temperature = 0;
    Sampler sampler(greedy, std::vector<int32_t>(g.suppress.begin(), g.suppress.end()));
    SpeculativeGenerator gen(decoder, drafter.drafter.get(), sampler, o.speculative);
    gen.begin(prompt, out.hidden);
    bool stop = false;
    while (!stop && int(generated.size()) < g.max_tokens) {
      const SpeculativeRound r = gen.round(-1, g.max_tokens - int(generated.size()));
      for (int32_t tok : r.emitted) {
        generated.push_back(tok);
        g.on_token(tok);
        if (std::find(g.stop.begin(), g.stop.end(), tok) != g.stop.end()) {
          stop = true;
          break;
        }
      }
    }
    const SpeculativeStats& st = gen.stats();
    std::fprintf(stderr,
                 "speculative: %lld rounds, %lld of %lld drafts accepted, %.2f tokens/round\n",
                 (long long)st.rounds, (long long)st.accepted, (long long)st.drafted,
                 st.rounds ? double(st.emitted) / double(st.rounds) : 0.0);
  } else if (g.max_tokens > 0) {
    generated = greedy_continue(decoder, out.logits.data(), g);
  }
  const std::string rest = stream.flush();
  std::fwrite(rest.data(), 1, rest.size(), stdout);
  std::fputs("\n", stdout);
  const double pp = std::chrono::duration<double>(t1 - t0).count();
  const double tg = std::chrono::duration<double>(clock::now() - t1).count();
  std::fprintf(stderr, "prompt: %zu tokens, %.2f tokens/s | generated: %zu tokens, %.2f tokens/s\n",
               prompt.size(), prompt.size() / std::max(pp, 1e-9), generated.size(),
               generated.size() / std::max(tg, 1e-9));
  return 0;
}

}  // namespace

int cmd_run(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h", "--raw", "--json", "--no-bos", "--special"});
  if (args.has("--help") || args.has("-h")) {
    std::printf(
        "usage: unigemma run [-m MODEL] -p TEXT [options]\n"
        "  Answers TEXT as one chat turn (the model's chat template), streaming the answer.\n"
        "  -p -                    read the prompt from standard input\n"
        "  --raw                   no template: continue TEXT greedily (also --ids 2,818,...)\n"
        "  --special               (--raw) parse special-token text such as <|turn>\n"
        "  --no-bos                (--raw) do not prepend <bos>\n"
        "  --json                  print {content, thinking, tool_calls, errors, finish_reason, "
        "usage}\n"
        "  --tools FILE            tool declarations the model may call: a JSON array in the\n"
        "                          OpenAI format ([{\"type\": \"function\", \"function\": "
        "{...}}])\n"
        "%s%s",
        kGenerationHelp, kMediaHelp);
    return 0;
  }
  std::vector<std::string> known = kGenerationOptions;
  for (const char* k :
       {"-p", "--prompt", "--ids", "--raw", "--json", "--no-bos", "--special", "--tools"}) {
    known.push_back(k);
  }
  known.insert(known.end(), kMediaOptions.begin(), kMediaOptions.end());
  args.reject_unknown(known);
  const std::string path = model_path_from_args(args, "run");
  const bool raw = args.has("--raw") || args.has("--ids");
  if (raw && args.has("--tools")) {
    throw Error("option --tools: not with --raw (tools need the chat template)");
  }
  LoadedModel m = load_model_and_tokenizer(path);
  ChatOptions o = chat_options_from_args(args, m);

  std::string text;
  if (!args.has("--ids")) {
    if (!args.has("-p") && !args.has("--prompt")) throw Error("run: missing -p TEXT");
    text = args.get({"-p", "--prompt"});
    if (text == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    }
  }
  if (raw) {
    std::vector<int32_t> prompt;
    if (args.has("--ids")) {
      prompt = parse_id_list(args.get({"--ids"}));
    } else {
      EncodeOptions eo;
      eo.add_bos = !args.has("--no-bos") && m.tokenizer->bos_id() >= 0;
      eo.parse_special = args.has("--special");
      prompt = m.tokenizer->encode(text, eo);
    }
    if (prompt.empty()) throw Error("run: the prompt is empty");
    return run_raw(args, m, prompt, o);
  }

  if (args.has("--tools")) o.tools = tools_from_file(args.get({"--tools"}));
  ThreadPool pool(threads_from_args(args));
  ChatSession session(*m.model, *m.tokenizer, pool, o);
  if (args.has("--system")) session.set_system(args.get({"--system"}));
  const std::unique_ptr<gemma4::Projector> projector = projector_from_args(args, m);
  attach_media_from_args(args, projector.get(), session);
  const LoadedDrafter drafter = attach_drafter_from_args(args, m, pool, session);
  ProgressBar bar("prompt");
  session.set_progress([&bar](int done, int total) {
    bar.update(done, total);
    if (done >= total) bar.done();
  });
  const bool json = args.has("--json");
  auto on_event = [&](const OutputEvent& e) {
    if (json) return;
    if (e.type == OutputEventType::kContent) std::fputs(e.text.c_str(), stdout);
    if (e.type == OutputEventType::kToolCall) {
      std::printf(
          "[tool call] %s(%s)\n", e.tool_call.name.c_str(),
          e.tool_call.arguments.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              .c_str());
    }
    if (e.type == OutputEventType::kError) {
      std::printf("[malformed tool call: %s] %s\n", e.error.c_str(), e.text.c_str());
    }
    std::fflush(stdout);
  };
  ChatReply r = session.send(text, on_event);
  if (json) {
    nlohmann::ordered_json j;
    j["content"] = r.content;
    j["thinking"] = r.thinking;
    j["tool_calls"] = nlohmann::ordered_json::array();
    for (const auto& c : r.tool_calls) {
      j["tool_calls"].push_back(
          {{"name", c.name}, {"arguments", nlohmann::ordered_json(c.arguments)}});
    }
    j["errors"] = nlohmann::ordered_json::array();
    for (const auto& e : r.errors) j["errors"].push_back({{"raw", e.raw}, {"message", e.message}});
    j["finish_reason"] = r.finish_reason;
    j["usage"] = {{"prompt_tokens", r.stats.prompt_tokens},
                  {"completion_tokens", r.stats.generated_tokens}};
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fputs("\n", stdout);
  }
  std::fprintf(stderr, "prompt: %d tokens, %.2f tokens/s | generated: %d tokens, %.2f tokens/s\n",
               r.stats.prompt_tokens,
               r.stats.prompt_evaluated / std::max(r.stats.prompt_seconds, 1e-9),
               r.stats.generated_tokens,
               r.stats.generated_tokens / std::max(r.stats.generate_seconds, 1e-9));
  return 0;
}

}  // namespace ug::cli
