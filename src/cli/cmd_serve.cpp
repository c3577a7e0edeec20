// `unigemma serve`: the OpenAI- and Ollama-compatible HTTP server.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "runtime/scheduler.h"
#include "server/server.h"
#include "util/error.h"

namespace ug::cli {

namespace {
server::Server* g_server = nullptr;
void on_signal(int) {
  // httplib's stop() only flips flags and shuts the listening socket down.
  if (g_server) g_server->stop();
}
}  // namespace

int cmd_serve(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h", "--allow-remote-media"});
  if (args.has("--help") || args.has("-h")) {
    std::printf(
        "usage: unigemma serve [-m MODEL] [options]\n"
        "  OpenAI (/v1/chat/completions, /v1/completions, /v1/models) and Ollama (/api/chat,\n"
        "  /api/generate, /api/tags, /api/show, /api/ps, /api/version) APIs; /health, /metrics.\n"
        "  --host ADDR             address to bind (default 127.0.0.1: this machine only)\n"
        "  --port N                port (default 8080; 0 = any free port, printed at start)\n"
        "  --parallel N            sequences generated at once, batched (default 1)\n"
        "  --queue N               requests waiting beyond those (default 64; then 429)\n"
        "  --api-key KEY           require 'Authorization: Bearer KEY' (all routes but /health)\n"
        "  --max-body MB           largest request body (default 64)\n"
        "  --max-media N           images + audio clips per request (default 8)\n"
        "  --max-image-pixels N    largest image, width x height (default 33554432)\n"
        "  --allow-remote-media    fetch http(s) image URLs (off: only data: URIs)\n"
        "  --timeout SECONDS       per-request limit (default 600)\n"
        "  --alias NAME            model name clients use (default: the file name)\n"
        "  --http-threads N        connection threads (default 32)\n"
        "  --prefill-chunked on|off  evaluate new prompts one ubatch per step between decode\n"
        "                          steps (default on; off: whole prompt at admission)\n"
        "%s%s",
        kGenerationHelp, kMediaHelp);
    return 0;
  }
  std::vector<std::string> known = kGenerationOptions;
  for (const char* k :
       {"--host", "--port", "--parallel", "-np", "--queue", "--api-key", "--max-body",
        "--max-media", "--max-image-pixels", "--allow-remote-media", "--timeout", "--alias",
        "--http-threads", "--prefill-chunked", "--mmproj", "--image-tokens", "--audio-max"}) {
    known.push_back(k);
  }
  args.reject_unknown(known);
  const std::string path = model_path_from_args(args, "serve");
  LoadedModel m = load_model_and_tokenizer(path);
  const ChatOptions chat = chat_options_from_args(args, m);

  server::ServerOptions so;
  so.host = args.get({"--host"}, "127.0.0.1");
  so.port = args.get_int({"--port"}, 8080);
  if (so.port < 0 || so.port > 65535) throw Error("option --port: must be 0..65535");
  so.api_key = args.get({"--api-key"});
  const int max_body_mb = args.get_int({"--max-body"}, 64);
  if (max_body_mb < 1 || max_body_mb > 4096) throw Error("option --max-body: must be 1..4096 MB");
  so.max_body_bytes = size_t(max_body_mb) << 20;
  so.limits.max_media = args.get_int({"--max-media"}, 8);
  if (so.limits.max_media < 0) throw Error("option --max-media: must be >= 0");
  so.limits.max_media_bytes = so.max_body_bytes;
  so.limits.allow_remote_media = args.has("--allow-remote-media");
  so.max_image_pixels = int64_t(args.get_double({"--max-image-pixels"}, double(int64_t(1) << 25)));
  if (so.max_image_pixels < 1) throw Error("option --max-image-pixels: must be > 0");
  const int timeout = args.get_int({"--timeout"}, 600);
  if (timeout < 1) throw Error("option --timeout: must be >= 1 second");
  so.request_timeout = std::chrono::seconds(timeout);
  so.http_threads = args.get_int({"--http-threads"}, 32);
  if (so.http_threads < 2 || so.http_threads > 1024)
    throw Error("option --http-threads: must be 2..1024");
  so.default_max_tokens = chat.max_tokens;
  so.default_sampling = chat.sampling;
  so.chat_template = chat.chat_template;
  so.model_path = path;
  std::error_code ec;
  so.model_bytes =
      std::filesystem::is_regular_file(path, ec) ? std::filesystem::file_size(path, ec) : 0;
  so.model_name = args.get({"--alias"}, std::filesystem::path(path).stem().string());

  SchedulerOptions sched;
  sched.n_parallel = args.get_int({"--parallel", "-np"}, 1);
  if (sched.n_parallel < 1 || sched.n_parallel > 256)
    throw Error("option --parallel: must be 1..256");
  sched.max_queue = args.get_int({"--queue"}, 64);
  if (sched.max_queue < 0) throw Error("option --queue: must be >= 0");
  sched.n_ctx = chat.n_ctx;
  sched.n_ubatch = chat.n_ubatch;
  sched.cache_type = chat.cache_type;
  const std::string chunked = args.get({"--prefill-chunked"}, "on");
  if (chunked != "on" && chunked != "off")
    throw Error("option --prefill-chunked: expected on or off");
  sched.chunked_prefill = chunked == "on";
  so.http_threads = std::max(so.http_threads, sched.n_parallel + 4);

  const std::unique_ptr<gemma4::Projector> projector = projector_from_args(args, m);
  so.media = media_options_from_args(args, projector.get());
  ThreadPool pool(threads_from_args(args));
  // MTP drafter: speculative rounds while one sequence generates (docs/server.md).
  const LoadedDrafter drafter = drafter_from_args(args, m, pool);
  sched.drafter = drafter.drafter.get();
  sched.speculative = chat.speculative;
  Scheduler scheduler(*m.model, *m.tokenizer, pool, sched);
  server::Server srv(*m.model, *m.tokenizer, projector.get(), scheduler, so);
  srv.bind();
  g_server = &srv;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  std::printf("unigemma serve: %s on http://%s:%d (%d parallel, context %d%s)\n",
              so.model_name.c_str(), so.host.c_str(), srv.port(), sched.n_parallel, sched.n_ctx,
              sched.drafter ? ", MTP drafter" : "");
  std::fflush(stdout);
  srv.listen();
  g_server = nullptr;
  std::fprintf(stderr, "unigemma serve: stopped\n");
  return 0;
}

}  // namespace ug::cli
