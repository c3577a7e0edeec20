// `unigemma chat`: an interactive conversation with line editing and history (libedit).
#include <editline/readline.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/progress.h"
#include "runtime/chat_session.h"
#include "util/error.h"

namespace ug::cli {

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
  g_interrupted.store(true);
}

const char* kChatHelp =
    "commands:\n"
    "  /think on|off      thinking mode (the model reasons before answering)\n"
    "  /thoughts show|hide  show or collapse the thinking text\n"
    "  /system TEXT       set the system prompt (empty: remove it)\n"
    "  /reset             forget the conversation (keeps the system prompt)\n"
    "  /save FILE         save the conversation as JSON\n"
    "  /load FILE         load a conversation saved with /save\n"
    "  /image FILE        attach an image to your next message (needs the projector)\n"
    "  /audio FILE        attach an audio clip to your next message\n"
    "  /video FILE        attach a video (frames, then its audio track) to your next message\n"
    "  /exit              leave (also Ctrl-D); Ctrl-C stops the current answer\n";

std::string history_path() {
  const char* home = std::getenv("HOME");
  if (!home || !*home) return {};
  const auto dir = std::filesystem::path(home) / ".local" / "share" / "unigemma";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  return ec ? std::string() : (dir / "chat_history").string();
}

bool read_line(bool interactive, std::string* line) {
  if (!interactive) return static_cast<bool>(std::getline(std::cin, *line));
  char* raw = readline("> ");
  if (!raw) return false;
  *line = raw;
  if (!line->empty()) add_history(raw);
  std::free(raw);
  return true;
}

}  // namespace

int cmd_chat(int argc, char** argv) {
  Args args(argc, argv, 2, {"--help", "-h"});
  if (args.has("--help") || args.has("-h")) {
    std::printf("usage: unigemma chat [-m MODEL] [options]\n%s%s\n%s", kGenerationHelp, kMediaHelp,
                kChatHelp);
    return 0;
  }
  std::vector<std::string> known = kGenerationOptions;
  known.insert(known.end(), kMediaOptions.begin(), kMediaOptions.end());
  args.reject_unknown(known);
  const std::string path = model_path_from_args(args, "chat");
  LoadedModel m = load_model_and_tokenizer(path);
  ChatOptions options = chat_options_from_args(args, m);
  ThreadPool pool(threads_from_args(args));
  ChatSession session(*m.model, *m.tokenizer, pool, options);
  if (args.has("--system")) session.set_system(args.get({"--system"}));
  const std::unique_ptr<gemma4::Projector> projector = projector_from_args(args, m);
  attach_media_from_args(args, projector.get(), session);
  const LoadedDrafter drafter = attach_drafter_from_args(args, m, pool, session);
  ProgressBar bar("prompt");
  session.set_progress([&bar](int done, int total) {
    bar.update(done, total);
    if (done >= total) bar.done();
  });

  const bool interactive = isatty(STDIN_FILENO);
  const bool color = isatty(STDOUT_FILENO);
  bool show_thoughts = true;
  const std::string hist = interactive ? history_path() : std::string();
  if (interactive && !hist.empty()) read_history(hist.c_str());
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);

  if (interactive) {
    std::printf("unigemma chat — %s. /help for commands, Ctrl-D to leave.\n",
                std::filesystem::path(path).filename().c_str());
  }
  std::string line;
  while (true) {
    g_interrupted.store(false);
    if (!read_line(interactive, &line)) break;
    if (line.empty()) continue;
    try {
      if (line[0] == '/') {
        const size_t sp = line.find(' ');
        const std::string cmd = line.substr(0, sp);
        const std::string arg = sp == std::string::npos ? "" : line.substr(sp + 1);
        if (cmd == "/exit" || cmd == "/quit") break;
        if (cmd == "/help") {
          std::fputs(kChatHelp, stdout);
        } else if (cmd == "/think" && (arg == "on" || arg == "off")) {
          session.options().enable_thinking = arg == "on";
          std::printf("thinking %s\n", arg.c_str());
        } else if (cmd == "/thoughts" && (arg == "show" || arg == "hide")) {
          show_thoughts = arg == "show";
          std::printf("thoughts %s\n", show_thoughts ? "shown" : "collapsed");
        } else if (cmd == "/system") {
          session.set_system(arg);
          std::printf(arg.empty() ? "system prompt removed\n" : "system prompt set\n");
        } else if (cmd == "/reset") {
          session.reset();
          std::printf("conversation reset\n");
        } else if (cmd == "/save" && !arg.empty()) {
          const std::string tmp = arg + ".tmp";
          {
            std::ofstream out(tmp);
            out << session.save().dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
            if (!out) throw Error(arg + ": cannot write");
          }
          std::filesystem::rename(tmp, arg);
          std::printf("saved %zu messages to %s\n", session.messages().size(), arg.c_str());
        } else if (cmd == "/load" && !arg.empty()) {
          std::ifstream in(arg);
          if (!in) throw Error(arg + ": cannot open");
          auto j = nlohmann::ordered_json::parse(in, nullptr, false);
          if (j.is_discarded()) throw Error(arg + ": not valid JSON");
          session.load(j);
          std::printf("loaded %zu messages from %s\n", session.messages().size(), arg.c_str());
        } else if ((cmd == "/image" || cmd == "/audio" || cmd == "/video") && !arg.empty()) {
          MediaKind kind = MediaKind::kImage;
          parse_media_kind(cmd.substr(1), &kind);
          print_media_notices(session.attach(kind, arg));
          std::printf("attached %s (%zu pending for your next message)\n", arg.c_str(),
                      session.pending_media());
        } else {
          std::printf("unknown or incomplete command '%s' (/help)\n", line.c_str());
        }
        std::fflush(stdout);
        continue;
      }
      bool in_thought = false;
      bool collapsed_note = false;
      auto on_event = [&](const OutputEvent& e) {
        if (e.type == OutputEventType::kThinking) {
          if (!show_thoughts) {
            if (!collapsed_note)
              std::fputs(color ? "\x1b[2m[thinking…]\x1b[0m\n" : "[thinking…]\n", stdout);
            collapsed_note = true;
          } else {
            if (!in_thought && color) std::fputs("\x1b[2m", stdout);
            in_thought = true;
            std::fputs(e.text.c_str(), stdout);
          }
        } else {
          if (in_thought) {
            std::fputs(color ? "\x1b[0m\n" : "\n", stdout);
            in_thought = false;
          }
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
        }
        std::fflush(stdout);
      };
      ChatReply r = session.send(line, on_event, &g_interrupted);
      if (in_thought && color) std::fputs("\x1b[0m", stdout);
      std::fputs("\n", stdout);
      const double tps = r.stats.generated_tokens / std::max(r.stats.generate_seconds, 1e-9);
      std::fprintf(stderr,
                   "%s[%d tokens, %.1f tokens/s; prompt %d tokens (%d new), %.1f tokens/s%s]%s\n",
                   color ? "\x1b[2m" : "", r.stats.generated_tokens, tps, r.stats.prompt_tokens,
                   r.stats.prompt_evaluated,
                   r.stats.prompt_evaluated / std::max(r.stats.prompt_seconds, 1e-9),
                   r.finish_reason == "cancelled" ? "; stopped" : "", color ? "\x1b[0m" : "");
    } catch (const std::exception& e) {  // a bad command or file must not end the session
      std::fprintf(stderr, "error: %s\n", e.what());
    }
  }
  if (interactive && !hist.empty()) write_history(hist.c_str());
  if (interactive) std::printf("\n");
  return 0;
}

}  // namespace ug::cli
