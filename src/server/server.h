// `unigemma serve`: OpenAI- and Ollama-compatible HTTP API over the batching scheduler.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "kernels/thread_pool.h"
#include "model/gemma4/model.h"
#include "model/gemma4/projector.h"
#include "runtime/scheduler.h"
#include "server/api_request.h"
#include "tokenizer/tokenizer.h"

namespace httplib {
class Server;
}

namespace ug::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;      // 0: any free port (see Server::port())
  std::string api_key;  // empty: no authentication
  size_t max_body_bytes = size_t(64) << 20;
  RequestLimits limits;
  int64_t max_image_pixels = int64_t(1) << 25;  // per image, checked from the header
  MediaOptions media;                           // image token budget, audio seconds limit
  int http_threads = 32;
  std::chrono::seconds request_timeout{600};
  int default_max_tokens = 2048;
  SamplerParams default_sampling;
  std::string model_name = "gemma4";  // id in /v1/models and /api/tags; any name is accepted
  std::string model_path;
  uint64_t model_bytes = 0;
  std::string chat_template;  // empty: the model's
};

class Server {
 public:
  // Everything referenced must outlive the server. `projector` may be null (media requests fail
  // with a hint).
  Server(const gemma4::Model& model, const Tokenizer& tokenizer, const gemma4::Projector* projector,
         Scheduler& scheduler, ServerOptions options);
  ~Server();

  // Binds the socket (throws ug::Error when it cannot); the port is then known.
  void bind();
  int port() const { return port_; }
  // Serves until stop() (from another thread or a signal handler's helper thread).
  void listen();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace ug::server
