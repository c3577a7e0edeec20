#include "server/server.h"

#include <dirent.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <random>
#include <sstream>

#include "chat/chat_template.h"
#include "media/audio.h"
#include "media/image.h"
#include "server/reply_text.h"
#include "util/error.h"

namespace ug::server {

using nlohmann::json;
using nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kVersion = "0.1.0";
constexpr auto kPoll = std::chrono::milliseconds(100);

bool is_ollama_path(const std::string& path) {
  return path.rfind("/api/", 0) == 0;
}

std::string dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void set_json(httplib::Response& res, int status, const ordered_json& body) {
  res.status = status;
  res.set_content(dump(body), "application/json");
}

const char* openai_error_type(int status) {
  switch (status) {
    case 401:
      return "authentication_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_exceeded";
    case 503:
      return "server_busy";
    case 504:
      return "timeout";
    default:
      return status >= 500 ? "server_error" : "invalid_request_error";
  }
}

void set_error(httplib::Response& res, const std::string& path, int status,
               const std::string& message, const std::string& param = {},
               const std::string& type = {}) {
  if (is_ollama_path(path)) {
    set_json(res, status, ordered_json{{"error", message}});
    return;
  }
  ordered_json err = {
      {"message", message},
      {"type", type.empty() ? openai_error_type(status) : type},
      {"param", param.empty() ? ordered_json(nullptr) : ordered_json(param)},
      {"code", status == 404 && type == "model_not_found" ? ordered_json("model_not_found")
                                                          : ordered_json(nullptr)}};
  set_json(res, status, ordered_json{{"error", err}});
}

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* digits = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = prefix;
  for (int i = 0; i < 24; ++i) id.push_back(digits[rng() % 36]);
  return id;
}

std::string rfc3339_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() %
      1000000000;
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)ns);
  return buf;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t to_ns(double seconds) {
  return int64_t(seconds * 1e9);
}

std::string socket_address(const sockaddr_storage& a, socklen_t len, int* port) {
  char host[NI_MAXHOST];
  *port = -1;
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&a), len, host, sizeof(host), nullptr, 0,
                  NI_NUMERICHOST) != 0) {
    return {};
  }
  if (a.ss_family == AF_INET) *port = ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) *port = ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return host;
}

// The socket of the connection that carries `req`: the open socket whose local and peer addresses
// are the request's (this httplib does not hand it to handlers). -1 when none matches.
int connection_socket(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return -1;
  int found = -1;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    struct stat st;
    if (fstat(int(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage local{}, peer{};
    socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
    if (getsockname(int(fd), reinterpret_cast<sockaddr*>(&local), &local_len) != 0) continue;
    if (getpeername(int(fd), reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) continue;
    int local_port = -1, peer_port = -1;
    if (socket_address(peer, peer_len, &peer_port) != req.remote_addr ||
        peer_port != req.remote_port) {
      continue;
    }
    if (socket_address(local, local_len, &local_port) != req.local_addr ||
        local_port != req.local_port) {
      continue;
    }
    found = int(fd);
    break;
  }
  closedir(dir);
  return found;
}

// The client closed (or reset) its side; pipelined bytes waiting to be read do not count.
bool peer_closed(int fd) {
  char c;
  const ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return true;
  return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

ordered_json openai_tool_call(const ParsedToolCall& c, size_t index, bool with_index) {
  ordered_json j;
  if (with_index) j["index"] = index;
  j["id"] = random_id("call_");
  j["type"] = "function";
  j["function"] = {{"name", c.name}, {"arguments", dump(ordered_json(c.arguments))}};
  return j;
}

ordered_json ollama_tool_call(const ParsedToolCall& c) {
  return {{"function", {{"name", c.name}, {"arguments", ordered_json(c.arguments)}}}};
}

}  // namespace

struct Server::Impl {
  const gemma4::Model& model;
  const Tokenizer& tokenizer;
  const gemma4::Projector* projector;
  Scheduler& scheduler;
  ServerOptions options;
  ChatTemplate chat_template;
  httplib::Server http;
  std::mutex media_mu;
  ThreadPool media_pool{2};
  const int64_t started = unix_now();
  std::mutex stats_mu;
  std::map<std::pair<std::string, int>, uint64_t> requests;  // (route, status) -> count

  Impl(const gemma4::Model& m, const Tokenizer& t, const gemma4::Projector* p, Scheduler& s,
       ServerOptions o)
      : model(m),
        tokenizer(t),
        projector(p),
        scheduler(s),
        options(std::move(o)),
        chat_template(!options.chat_template.empty() ? options.chat_template
                                                     : tokenizer.data().chat_template) {}

  void routes();
  bool authorized(const httplib::Request& req) const;
  void check_model(const std::string& name, const std::string& path) const;
  GenerationRequest prepare(const ApiRequest& r);
  MediaEmbedding embed(const MediaInput& m);
  void generate(const httplib::Request& req, httplib::Response& res, ApiFlavor flavor);
  ordered_json model_details() const;
  std::string metrics_text();
};

Server::Server(const gemma4::Model& model, const Tokenizer& tokenizer,
               const gemma4::Projector* projector, Scheduler& scheduler, ServerOptions options)
    : impl_(std::make_unique<Impl>(model, tokenizer, projector, scheduler, std::move(options))) {
  impl_->routes();
}

Server::~Server() = default;

void Server::bind() {
  auto& o = impl_->options;
  if (o.port == 0) {
    port_ = impl_->http.bind_to_any_port(o.host.c_str());
    if (port_ < 0) throw Error("serve: cannot bind " + o.host + " (any port)");
  } else {
    if (!impl_->http.bind_to_port(o.host.c_str(), o.port)) {
      throw Error("serve: cannot bind " + o.host + ":" + std::to_string(o.port) +
                  " (in use, or not an address of this machine)");
    }
    port_ = o.port;
  }
}

void Server::listen() {
  impl_->http.listen_after_bind();
}
void Server::stop() {
  impl_->http.stop();
}

bool Server::Impl::authorized(const httplib::Request& req) const {
  if (options.api_key.empty()) return true;
  std::string given;
  const std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Bearer ", 0) == 0) {
    given = auth.substr(7);
  } else if (req.has_header("x-api-key")) {
    given = req.get_header_value("x-api-key");
  }
  return constant_time_equal(given, options.api_key);
}

void Server::Impl::check_model(const std::string& name, const std::string& path) const {
  if (name.empty() || name == options.model_name || name == options.model_name + ":latest") return;
  throw ApiError(404,
                 "model '" + name + "' not found (this server serves '" + options.model_name + "')",
                 "model", is_ollama_path(path) ? "" : "model_not_found");
}

MediaEmbedding Server::Impl::embed(const MediaInput& m) {
  if (!projector) {
    throw ApiError(
        400, m.name + ": this server has no multimodal projector (start it with --mmproj FILE)",
        m.name);
  }
  std::string data = m.data;
  if (!m.url.empty()) {
    // Remote media (only with --allow-remote-media): plain GET, size-limited, no redirects.
    const size_t scheme_end = m.url.find("://");
    const size_t path_start = m.url.find('/', scheme_end + 3);
    const std::string origin = m.url.substr(0, path_start);
    const std::string path = path_start == std::string::npos ? "/" : m.url.substr(path_start);
    httplib::Client client(origin);
    client.set_connection_timeout(10);
    client.set_read_timeout(30);
    size_t limit = options.limits.max_media_bytes;
    std::string body;
    auto result = client.Get(path.c_str(), [&](const char* p, size_t n) {
      if (body.size() + n > limit) return false;
      body.append(p, n);
      return true;
    });
    if (!result || result->status != 200) {
      throw ApiError(400, m.name + ": could not fetch " + m.url, m.name);
    }
    data = std::move(body);
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(data.data());
  std::lock_guard lk(media_mu);
  if (m.kind == MediaKind::kImage) {
    if (!projector->vision)
      throw ApiError(400, m.name + ": the projector has no vision part", m.name);
    media::ImageLimits limits;
    limits.max_pixels = options.max_image_pixels;
    const media::Image img = media::decode_image(bytes, data.size(), m.name, limits);
    const media::Patches p = media::preprocess_image(img, options.media.image_budget);
    MediaEmbedding e = embed_patches(*projector, p.values, p.pos_x, p.pos_y, media_pool);
    e.source = m.name;
    e.grid_rows = p.rows;
    e.grid_cols = p.cols;
    return e;
  }
  if (!projector->audio) throw ApiError(400, m.name + ": the projector has no audio part", m.name);
  media::AudioLimits limits;
  limits.max_seconds = options.media.audio_max_seconds;
  const media::Audio audio = media::decode_audio(bytes, data.size(), m.name, limits);
  const double seconds = double(audio.samples.size()) / media::kAudioSampleRate;
  if (seconds > options.media.audio_max_seconds + 1e-9) {
    throw ApiError(400,
                   m.name + ": audio is longer than the " +
                       std::to_string(int(options.media.audio_max_seconds)) + " s limit",
                   m.name);
  }
  MediaEmbedding e = embed_samples(*projector, audio.samples, media_pool);
  e.source = m.name;
  return e;
}

GenerationRequest Server::Impl::prepare(const ApiRequest& r) {
  GenerationRequest g;
  g.sampling = r.sampling;
  g.json = r.json;
  g.json_schema = r.schema;
  bool thinking = r.enable_thinking;
  if (r.tool_choice == ToolChoice::kRequired || r.tool_choice == ToolChoice::kNamed) {
    // The reply starts with a native call of one of the offered functions (only the named one is
    // left in `tools`); no thinking block before it.
    thinking = false;
    for (const auto& t : r.tools) {
      g.forced_prefixes.push_back("<|tool_call>call:" + t["function"]["name"].get<std::string>() +
                                  "{");
    }
  } else if (r.tool_choice == ToolChoice::kNone) {
    const int32_t call = tokenizer.find_token("<|tool_call>");
    if (call >= 0) g.banned_tokens.push_back(call);
  }
  g.ignore_eos = r.ignore_eos;
  g.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options.request_timeout);
  if (r.raw) {
    EncodeOptions eo;
    eo.add_bos = tokenizer.bos_id() >= 0 && tokenizer.add_bos_default();
    eo.parse_special = true;
    g.prompt.input.tokens = tokenizer.encode(r.prompt, eo);
    g.prompt.ids = g.prompt.input.tokens;
    g.prompt.cache_keys = g.prompt.input.tokens;
  } else {
    ordered_json inputs;
    inputs["messages"] = r.messages;
    if (!r.tools.empty()) inputs["tools"] = r.tools;
    inputs["add_generation_prompt"] = true;
    inputs["enable_thinking"] = thinking;
    const int32_t bos = tokenizer.bos_id();
    inputs["bos_token"] = bos >= 0 ? tokenizer.token_piece(bos, true) : std::string();
    std::string rendered;
    try {
      rendered = chat_template.render(inputs);
    } catch (const Error& e) {
      throw ApiError(400,
                     std::string("the conversation does not fit the chat template: ") + e.what(),
                     "messages");
    }
    if (r.media.empty()) {
      EncodeOptions eo;
      eo.parse_special = true;
      g.prompt.input.tokens = tokenizer.encode(rendered, eo);
      g.prompt.ids = g.prompt.input.tokens;
      g.prompt.cache_keys = g.prompt.input.tokens;
    } else {
      std::vector<MediaEmbedding> embedded;
      embedded.reserve(r.media.size());
      for (const MediaInput& m : r.media) embedded.push_back(embed(m));
      std::vector<const MediaEmbedding*> ptrs;
      for (const auto& e : embedded) ptrs.push_back(&e);
      g.prompt = assemble_prompt(rendered, tokenizer, ptrs, model.config.n_embd);
    }
  }
  if (g.prompt.cache_keys.empty()) throw ApiError(400, "the prompt is empty", "prompt");
  const int n_ctx = scheduler.options().n_ctx;
  const int prompt_len = int(g.prompt.cache_keys.size());
  if (prompt_len >= n_ctx) {
    throw ApiError(400,
                   "the prompt has " + std::to_string(prompt_len) +
                       " tokens, which does not fit the context length " + std::to_string(n_ctx),
                   "messages", "context_length_exceeded");
  }
  const int room = n_ctx - prompt_len;
  g.max_tokens = std::min(room, r.max_tokens.value_or(options.default_max_tokens));
  return g;
}

ordered_json Server::Impl::model_details() const {
  const auto& c = model.config;
  return {{"parent_model", ""},
          {"format", "gguf"},
          {"family", "gemma4"},
          {"families", {"gemma4"}},
          {"parameter_size", std::to_string(c.n_layer) + " layers"},
          {"quantization_level", ""}};
}

// The shared path of every generating endpoint.
void Server::Impl::generate(const httplib::Request& req, httplib::Response& res, ApiFlavor flavor) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) {
    try {
      const json again = json::parse(req.body);
      (void)again;
    } catch (const json::exception& e) {
      throw ApiError(400, std::string("invalid JSON body: ") + e.what());
    }
    throw ApiError(400, "invalid JSON body");
  }
  const RequestLimits& limits = options.limits;
  const SamplerParams& defaults = options.default_sampling;
  ApiRequest r;
  switch (flavor) {
    case ApiFlavor::kOpenAIChat:
      r = parse_openai_chat(body, defaults, limits);
      break;
    case ApiFlavor::kOpenAICompletion:
      r = parse_openai_completion(body, defaults, limits);
      break;
    case ApiFlavor::kOllamaChat:
      r = parse_ollama_chat(body, defaults, limits);
      break;
    case ApiFlavor::kOllamaGenerate:
      r = parse_ollama_generate(body, defaults, limits);
      break;
  }
  check_model(r.model, req.path);
  const std::string model_name = r.model.empty() ? options.model_name : r.model;
  const bool ollama = flavor == ApiFlavor::kOllamaChat || flavor == ApiFlavor::kOllamaGenerate;
  // Ollama: an empty generate/chat request loads the model and returns at once.
  if (ollama && ((flavor == ApiFlavor::kOllamaGenerate && r.prompt.empty() && r.media.empty()) ||
                 (flavor == ApiFlavor::kOllamaChat && r.messages.empty()))) {
    ordered_json j = {{"model", model_name}, {"created_at", rfc3339_now()}};
    if (flavor == ApiFlavor::kOllamaChat) {
      j["message"] = {{"role", "assistant"}, {"content", ""}};
    } else {
      j["response"] = "";
    }
    j["done"] = true;
    j["done_reason"] = "load";
    set_json(res, 200, j);
    return;
  }
  if (!ollama && flavor == ApiFlavor::kOpenAIChat && r.messages.empty()) {
    throw ApiError(400, "'messages' must not be empty", "messages");
  }
  GenerationRequest g = prepare(r);
  std::shared_ptr<Generation> job;
  try {
    job = scheduler.submit(std::move(g));
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }
  if (!job) {
    throw ApiError(429, "the server is busy (all sequences and the queue are full); retry later",
                   "", "rate_limit_exceeded");
  }
  const bool chat = flavor == ApiFlavor::kOpenAIChat || flavor == ApiFlavor::kOllamaChat ||
                    (flavor == ApiFlavor::kOllamaGenerate && !r.raw);
  auto text = std::make_shared<ReplyText>(tokenizer, chat && !r.json, r.stop);
  const std::string id = random_id(flavor == ApiFlavor::kOpenAIChat ? "chatcmpl-" : "cmpl-");
  const int64_t created = unix_now();
  const auto t_start = Clock::now();

  auto finish_reason = [text](const GenerationResult& res) -> std::string {
    if (text->stopped()) return "stop";
    if (res.finish_reason == "stop" && !text->tool_calls().empty()) return "tool_calls";
    if (res.finish_reason == "stop" || res.finish_reason == "length") return res.finish_reason;
    return res.finish_reason;  // cancelled / timeout / error
  };
  auto usage_json = [](const GenerationResult& res) {
    return ordered_json{{"prompt_tokens", res.prompt_tokens},
                        {"completion_tokens", res.generated_tokens},
                        {"total_tokens", res.prompt_tokens + res.generated_tokens},
                        {"prompt_tokens_details", {{"cached_tokens", res.prompt_cached}}}};
  };
  auto ollama_stats = [t_start](ordered_json& j, const GenerationResult& res) {
    j["total_duration"] = to_ns(std::chrono::duration<double>(Clock::now() - t_start).count());
    j["load_duration"] = 0;
    j["prompt_eval_count"] = res.prompt_tokens;
    j["prompt_eval_duration"] = to_ns(res.prompt_seconds);
    j["eval_count"] = res.generated_tokens;
    j["eval_duration"] = to_ns(res.decode_seconds);
  };

  if (!r.stream) {
    // Wait for the whole reply (stop strings cancel the rest of the generation). A client that
    // hangs up meanwhile cancels it too, which frees its sequence and KV at the next step.
    const int fd = connection_socket(req);
    std::vector<int32_t> tokens;
    bool client_gone = false;
    while (job->wait(&tokens, kPoll)) {
      if (!tokens.empty()) {
        text->push(tokens);
        tokens.clear();
        if (text->stopped()) job->cancel();
      }
      if (!client_gone && fd >= 0 && peer_closed(fd)) {
        client_gone = true;
        job->cancel();
      }
    }
    if (client_gone) {
      set_error(res, req.path, 499, "the client closed the connection");
      return;
    }
    text->finish();
    const GenerationResult gr = job->result();
    if (gr.finish_reason == "error") throw std::runtime_error(gr.error);
    if (gr.finish_reason == "timeout") {
      throw ApiError(504, "the request took longer than the server's limit of " +
                              std::to_string(options.request_timeout.count()) + " s");
    }
    const std::string reason = finish_reason(gr);
    ordered_json out;
    switch (flavor) {
      case ApiFlavor::kOpenAIChat: {
        ordered_json msg = {{"role", "assistant"}};
        msg["content"] = text->content().empty() && !text->tool_calls().empty()
                             ? ordered_json(nullptr)
                             : ordered_json(text->content());
        if (!text->reasoning().empty()) msg["reasoning_content"] = text->reasoning();
        if (!text->tool_calls().empty()) {
          msg["tool_calls"] = ordered_json::array();
          for (size_t i = 0; i < text->tool_calls().size(); ++i) {
            msg["tool_calls"].push_back(openai_tool_call(text->tool_calls()[i], i, false));
          }
        }
        out = {
            {"id", id},
            {"object", "chat.completion"},
            {"created", created},
            {"model", model_name},
            {"choices",
             {{{"index", 0}, {"message", msg}, {"logprobs", nullptr}, {"finish_reason", reason}}}},
            {"usage", usage_json(gr)}};
        break;
      }
      case ApiFlavor::kOpenAICompletion:
        out = {{"id", id},
               {"object", "text_completion"},
               {"created", created},
               {"model", model_name},
               {"choices",
                {{{"text", (r.echo ? r.prompt : std::string()) + text->content()},
                  {"index", 0},
                  {"logprobs", nullptr},
                  {"finish_reason", reason}}}},
               {"usage", usage_json(gr)}};
        break;
      case ApiFlavor::kOllamaChat: {
        ordered_json msg = {{"role", "assistant"}, {"content", text->content()}};
        if (!text->reasoning().empty()) msg["thinking"] = text->reasoning();
        if (!text->tool_calls().empty()) {
          msg["tool_calls"] = ordered_json::array();
          for (const auto& c : text->tool_calls()) msg["tool_calls"].push_back(ollama_tool_call(c));
        }
        out = {{"model", model_name},
               {"created_at", rfc3339_now()},
               {"message", msg},
               {"done", true},
               {"done_reason", reason == "tool_calls" ? "stop" : reason}};
        ollama_stats(out, gr);
        break;
      }
      case ApiFlavor::kOllamaGenerate:
        out = {{"model", model_name}, {"created_at", rfc3339_now()}, {"response", text->content()}};
        if (!text->reasoning().empty()) out["thinking"] = text->reasoning();
        out["done"] = true;
        out["done_reason"] = reason;
        ollama_stats(out, gr);
        break;
    }
    set_json(res, 200, out);
    return;
  }

  // Streaming: SSE for OpenAI, NDJSON for Ollama. The provider runs the whole stream in one
  // call; a failed write (client gone) cancels the generation, which frees its sequence.
  const bool include_usage = r.include_usage;
  const bool echo = r.echo;
  const std::string prompt_text = r.prompt;
  auto write_event = [ollama](httplib::DataSink& sink, const ordered_json& j) {
    const std::string s = ollama ? dump(j) + "\n" : "data: " + dump(j) + "\n\n";
    return sink.write(s.data(), s.size());
  };
  auto provider = [=](size_t, httplib::DataSink& sink) -> bool {
    auto chunk = [&](ordered_json delta, const ordered_json& reason) {
      if (flavor == ApiFlavor::kOpenAIChat) {
        return ordered_json{{"id", id},
                            {"object", "chat.completion.chunk"},
                            {"created", created},
                            {"model", model_name},
                            {"choices",
                             {{{"index", 0},
                               {"delta", std::move(delta)},
                               {"logprobs", nullptr},
                               {"finish_reason", reason}}}}};
      }
      return ordered_json{{"id", id},
                          {"object", "text_completion"},
                          {"created", created},
                          {"model", model_name},
                          {"choices",
                           {{{"text", delta.value("content", "")},
                             {"index", 0},
                             {"logprobs", nullptr},
                             {"finish_reason", reason}}}}};
    };
    size_t n_calls = 0;
    auto send_delta = [&](const ReplyDelta& d) {
      if (d.empty()) return true;
      if (ollama) {
        ordered_json j = {{"model", model_name}, {"created_at", rfc3339_now()}};
        if (flavor == ApiFlavor::kOllamaChat) {
          ordered_json msg = {{"role", "assistant"}, {"content", d.content}};
          if (!d.reasoning.empty()) msg["thinking"] = d.reasoning;
          if (!d.tool_calls.empty()) {
            msg["tool_calls"] = ordered_json::array();
            for (const auto& c : d.tool_calls) msg["tool_calls"].push_back(ollama_tool_call(c));
          }
          j["message"] = msg;
        } else {
          j["response"] = d.content;
          if (!d.reasoning.empty()) j["thinking"] = d.reasoning;
        }
        j["done"] = false;
        return write_event(sink, j);
      }
      if (!d.reasoning.empty() && flavor == ApiFlavor::kOpenAIChat) {
        if (!write_event(sink, chunk({{"reasoning_content", d.reasoning}}, nullptr))) return false;
      }
      if (!d.content.empty()) {
        if (!write_event(sink, chunk({{"content", d.content}}, nullptr))) return false;
      }
      for (const auto& c : d.tool_calls) {
        ordered_json tc = ordered_json::array({openai_tool_call(c, n_calls++, true)});
        if (!write_event(sink, chunk({{"tool_calls", tc}}, nullptr))) return false;
      }
      return true;
    };
    bool ok = true;
    if (flavor == ApiFlavor::kOpenAIChat) {
      ok = write_event(sink, chunk({{"role", "assistant"}, {"content", ""}}, nullptr));
    } else if (flavor == ApiFlavor::kOpenAICompletion && echo) {
      ok = write_event(sink, chunk({{"content", prompt_text}}, nullptr));
    }
    std::vector<int32_t> tokens;
    auto last_write = Clock::now();
    while (ok) {
      const bool more = job->wait(&tokens, kPoll);
      if (!tokens.empty()) {
        ok = send_delta(text->push(tokens));
        tokens.clear();
        last_write = Clock::now();
        if (text->stopped()) job->cancel();
      } else if (!ollama && Clock::now() - last_write > std::chrono::seconds(2)) {
        // An SSE comment now and then: keeps proxies open and notices a client that left.
        ok = sink.write(": keep-alive\n\n", 14);
        last_write = Clock::now();
      }
      if (!more) break;
    }
    if (!ok) {
      job->cancel();
      return false;
    }
    ok = send_delta(text->finish());
    const GenerationResult gr = job->result();
    if (gr.finish_reason == "error" || gr.finish_reason == "timeout") {
      const std::string message = gr.finish_reason == "timeout"
                                      ? "the request took longer than the server's time limit"
                                      : "generation failed: " + gr.error;
      if (ollama) {
        write_event(sink, ordered_json{{"error", message}});
      } else {
        write_event(sink,
                    ordered_json{{"error", {{"message", message}, {"type", "server_error"}}}});
        sink.write("data: [DONE]\n\n", 14);
      }
      sink.done();
      return true;
    }
    const std::string reason = finish_reason(gr);
    if (ollama) {
      ordered_json j = {{"model", model_name}, {"created_at", rfc3339_now()}};
      if (flavor == ApiFlavor::kOllamaChat) {
        j["message"] = {{"role", "assistant"}, {"content", ""}};
      } else {
        j["response"] = "";
      }
      j["done"] = true;
      j["done_reason"] = reason == "tool_calls" ? "stop" : reason;
      ollama_stats(j, gr);
      ok = ok && write_event(sink, j);
    } else {
      ok = ok && write_event(sink, chunk(ordered_json::object(), reason));
      if (include_usage) {
        ordered_json u = chunk(ordered_json::object(), nullptr);
        u["choices"] = ordered_json::array();
        u["usage"] = usage_json(gr);
        ok = ok && write_event(sink, u);
      }
      ok = ok && sink.write("data: [DONE]\n\n", 14);
    }
    if (ok) sink.done();
    return ok;
  };
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(ollama ? "application/x-ndjson" : "text/event-stream", provider,
                                   [job](bool success) {
                                     if (!success) job->cancel();
                                   });
}

std::string Server::Impl::metrics_text() {
  const SchedulerMetrics m = scheduler.metrics();
  std::ostringstream o;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n"
      << name << " " << value << "\n";
  };
  o << "# HELP unigemma_requests_total HTTP requests by route and status.\n"
    << "# TYPE unigemma_requests_total counter\n";
  {
    std::lock_guard lk(stats_mu);
    for (const auto& [key, count] : requests) {
      o << "unigemma_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} "
        << count << "\n";
    }
  }
  metric("unigemma_generations_total", "counter", "Generations finished (any reason).",
         m.requests_finished);
  metric("unigemma_generations_cancelled_total", "counter",
         "Generations cancelled (client gone, stop string, timeout).", m.requests_cancelled);
  metric("unigemma_prompt_tokens_total", "counter", "Prompt tokens of admitted requests.",
         m.prompt_tokens);
  metric("unigemma_prompt_tokens_cached_total", "counter",
         "Prompt tokens reused from the prompt cache.", m.prompt_tokens - m.prompt_evaluated);
  metric("unigemma_generated_tokens_total", "counter", "Tokens generated.", m.generated_tokens);
  metric("unigemma_prompt_tokens_per_second", "gauge",
         "Prompt processing speed (evaluated tokens / prompt seconds, since start).",
         m.prompt_seconds > 0 ? double(m.prompt_evaluated) / m.prompt_seconds : 0.0);
  metric("unigemma_decode_tokens_per_second", "gauge",
         "Aggregate decode speed (tokens / seconds spent in batched decode steps, since start).",
         m.decode_seconds > 0 ? double(m.generated_tokens) / m.decode_seconds : 0.0);
  metric("unigemma_decode_steps_total", "counter", "Batched decode steps.", m.decode_steps);
  metric("unigemma_decode_seconds_total", "counter", "Wall seconds spent in batched decode steps.",
         m.decode_seconds);
  metric("unigemma_prompt_seconds_total", "counter", "Wall seconds spent processing prompts.",
         m.prompt_seconds);
  o << "# HELP unigemma_time_to_first_token_seconds Time from request to first generated token.\n"
    << "# TYPE unigemma_time_to_first_token_seconds histogram\n";
  for (size_t i = 0; i < m.ttft_bounds.size(); ++i) {
    o << "unigemma_time_to_first_token_seconds_bucket{le=\"" << m.ttft_bounds[i] << "\"} "
      << m.ttft_counts[i] << "\n";
  }
  const uint64_t total = m.ttft_counts.empty() ? 0 : m.ttft_counts.back();
  o << "unigemma_time_to_first_token_seconds_bucket{le=\"+Inf\"} " << total << "\n"
    << "unigemma_time_to_first_token_seconds_sum " << m.ttft_sum << "\n"
    << "unigemma_time_to_first_token_seconds_count " << total << "\n";
  if (scheduler.options().drafter) {
    metric("unigemma_mtp_rounds_total", "counter",
           "Speculative rounds with the MTP drafter (one generating sequence).", m.spec_rounds);
    metric("unigemma_mtp_drafted_tokens_total", "counter", "Draft tokens proposed by the drafter.",
           m.spec_drafted);
    metric("unigemma_mtp_accepted_tokens_total", "counter",
           "Draft tokens accepted by the target model.", m.spec_accepted);
    metric("unigemma_mtp_acceptance_rate", "gauge", "Accepted / drafted tokens, since start.",
           m.spec_drafted > 0 ? double(m.spec_accepted) / double(m.spec_drafted) : 0.0);
  }
  metric("unigemma_prompt_chunks_total", "counter",
         "Prompt evaluations (chunked prefill: one per ubatch between decode steps).",
         m.prompt_chunks);
  metric("unigemma_queue_depth", "gauge", "Requests waiting for a sequence slot.", m.queue_depth);
  metric("unigemma_active_sequences", "gauge", "Sequences generating now.", m.active_sequences);
  metric("unigemma_parallel_sequences", "gauge", "Sequence slots (--parallel).",
         scheduler.options().n_parallel);
  metric("unigemma_kv_cache_positions_used", "gauge",
         "KV positions held by the slots (including the prompt cache).", m.kv_positions_used);
  metric("unigemma_kv_cache_positions_total", "gauge", "KV positions available (slots x context).",
         m.kv_positions_total);
  metric("unigemma_kv_cache_reserved_bytes", "gauge", "Virtual memory reserved for KV caches.",
         m.kv_bytes_reserved);
  return o.str();
}

void Server::Impl::routes() {
  http.new_task_queue = [n = options.http_threads] { return new httplib::ThreadPool(size_t(n)); };
  http.set_payload_max_length(options.max_body_bytes);
  http.set_read_timeout(60, 0);
  http.set_write_timeout(60, 0);

  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/health" || authorized(req))
      return httplib::Server::HandlerResponse::Unhandled;
    set_error(res, req.path, 401, "missing or wrong API key (send 'Authorization: Bearer KEY')", "",
              "authentication_error");
    return httplib::Server::HandlerResponse::Handled;
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    std::lock_guard lk(stats_mu);
    const bool known = req.path.rfind("/v1/", 0) == 0 || req.path.rfind("/api/", 0) == 0 ||
                       req.path == "/health" || req.path == "/metrics";
    ++requests[{known ? req.path : std::string("other"), res.status}];
  });
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) -> httplib::Server::HandlerResponse {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (res.status == 413) {
          set_error(res, req.path, 413,
                    "the request body is larger than the server's limit (--max-body)");
        } else if (res.status == 404) {
          set_error(res, req.path, 404, "no such endpoint: " + req.method + " " + req.path);
        } else {
          set_error(res, req.path, res.status, "bad request");
        }
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = std::string("internal error: ") + e.what();
        } catch (...) {
        }
        set_error(res, req.path, 500, what);
      });

  auto guarded = [this](ApiFlavor flavor) {
    return [this, flavor](const httplib::Request& req, httplib::Response& res) {
      try {
        generate(req, res, flavor);
      } catch (const ApiError& e) {
        set_error(res, req.path, e.status, e.what(), e.param, e.type);
      } catch (const Error& e) {
        set_error(res, req.path, 400, e.what());
      } catch (const std::bad_alloc&) {
        set_error(res, req.path, 503, "out of memory for this request");
      } catch (const std::exception& e) {
        set_error(res, req.path, 500, std::string("internal error: ") + e.what());
      }
    };
  };
  http.Post("/v1/chat/completions", guarded(ApiFlavor::kOpenAIChat));
  http.Post("/chat/completions", guarded(ApiFlavor::kOpenAIChat));
  http.Post("/v1/completions", guarded(ApiFlavor::kOpenAICompletion));
  http.Post("/api/chat", guarded(ApiFlavor::kOllamaChat));
  http.Post("/api/generate", guarded(ApiFlavor::kOllamaGenerate));

  http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    set_json(res, 200, ordered_json{{"status", "ok"}});
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(), "text/plain; version=0.0.4");
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    set_json(res, 200,
             ordered_json{{"object", "list"},
                          {"data",
                           {{{"id", options.model_name},
                             {"object", "model"},
                             {"created", started},
                             {"owned_by", "unigemma"}}}}});
  });
  auto model_entry = [this]() {
    return ordered_json{{"name", options.model_name + ":latest"},
                        {"model", options.model_name + ":latest"},
                        {"modified_at", rfc3339_now()},
                        {"size", options.model_bytes},
                        {"digest", ""},
                        {"details", model_details()}};
  };
  http.Get("/api/tags", [model_entry](const httplib::Request&, httplib::Response& res) {
    set_json(res, 200, ordered_json{{"models", {model_entry()}}});
  });
  http.Get("/api/ps", [model_entry](const httplib::Request&, httplib::Response& res) {
    ordered_json m = model_entry();
    m["expires_at"] = "2999-01-01T00:00:00Z";
    m["size_vram"] = 0;
    set_json(res, 200, ordered_json{{"models", {m}}});
  });
  http.Get("/api/version", [](const httplib::Request&, httplib::Response& res) {
    set_json(res, 200, ordered_json{{"version", kVersion}});
  });
  http.Post("/api/show", [this](const httplib::Request& req, httplib::Response& res) {
    json body = json::parse(req.body, nullptr, false);
    if (!body.is_object())
      return set_error(res, req.path, 400, "the request body must be a JSON object");
    std::string name;
    for (const char* key : {"model", "name"}) {
      if (body.contains(key) && body[key].is_string()) name = body[key].get<std::string>();
    }
    try {
      check_model(name, req.path);
    } catch (const ApiError& e) {
      return set_error(res, req.path, e.status, e.what());
    }
    const auto& c = model.config;
    ordered_json caps = {"completion", "tools", "thinking"};
    if (projector && projector->vision) caps.push_back("vision");
    if (projector && projector->audio) caps.push_back("audio");
    set_json(res, 200,
             ordered_json{{"modelfile", ""},
                          {"parameters", ""},
                          {"template", tokenizer.data().chat_template},
                          {"details", model_details()},
                          {"model_info",
                           {{"general.architecture", "gemma4"},
                            {"gemma4.block_count", c.n_layer},
                            {"gemma4.embedding_length", c.n_embd},
                            {"gemma4.context_length", scheduler.options().n_ctx},
                            {"gemma4.vocab_size", c.n_vocab}}},
                          {"capabilities", caps}});
  });
}

}  // namespace ug::server
