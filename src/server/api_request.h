// Conversion of OpenAI and Ollama request bodies into one internal request, with every check a
// client can fail (types, ranges, media encodings and limits) reported as an ApiError that the
// server turns into a 4xx JSON error. Pure functions of the JSON: no model, no I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/json_constraint.h"
#include "runtime/multimodal.h"
#include "runtime/sampler.h"

namespace ug::server {

// A client error: HTTP status (400, 401, 404, 413, 429...), OpenAI error type and the offending
// parameter (may be empty).
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = {},
           std::string type = "invalid_request_error")
      : std::runtime_error(std::move(message)),
        status(status),
        type(std::move(type)),
        param(std::move(param)) {}
  int status;
  std::string type;
  std::string param;
};

struct RequestLimits {
  int max_media = 8;                   // images + audio clips per request
  size_t max_media_bytes = 32u << 20;  // decoded size of one media item
  bool allow_remote_media = false;     // http(s) URLs in image_url
  int max_tokens_limit = 1 << 20;
};

struct MediaInput {
  MediaKind kind = MediaKind::kImage;
  std::string data;  // encoded file bytes (PNG, JPEG, WAV, MP3...), or empty with `url`
  std::string url;   // remote http(s) URL (only with allow_remote_media)
  std::string name;  // for messages: "messages[2].content[1]"
};

// tool_choice: auto (the model decides), none (no tool call), required (some tool), named.
enum class ToolChoice { kAuto, kNone, kRequired, kNamed };

enum class ApiFlavor { kOpenAIChat, kOpenAICompletion, kOllamaChat, kOllamaGenerate };

struct ApiRequest {
  ApiFlavor flavor = ApiFlavor::kOpenAIChat;
  std::string model;
  // Template input (chat requests): messages in the chat template's format (content parts
  // {"type": "text"|"image"|"audio"}), tools as function declarations.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();
  std::vector<MediaInput> media;  // in the order of their placeholders
  // Plain-text requests (/v1/completions, /api/generate with raw): the prompt as is.
  bool raw = false;
  std::string prompt;

  SamplerParams sampling;         // starts from the server's defaults
  std::optional<int> max_tokens;  // absent: the server's default
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool enable_thinking = false;
  std::optional<JsonTop> json;               // response_format / format
  nlohmann::json json_schema;                // the schema, when one was given
  std::shared_ptr<const JsonSchema> schema;  // compiled `json_schema`
  ToolChoice tool_choice = ToolChoice::kAuto;
  bool echo = false;        // /v1/completions echo
  bool ignore_eos = false;  // extension (as llama.cpp): generate exactly max_tokens
  std::string keep_alive;   // Ollama; accepted, not used
};

// `defaults`: the server's sampling defaults, which the request's fields override.
ApiRequest parse_openai_chat(const nlohmann::json& body, const SamplerParams& defaults,
                             const RequestLimits& limits);
ApiRequest parse_openai_completion(const nlohmann::json& body, const SamplerParams& defaults,
                                   const RequestLimits& limits);
ApiRequest parse_ollama_chat(const nlohmann::json& body, const SamplerParams& defaults,
                             const RequestLimits& limits);
ApiRequest parse_ollama_generate(const nlohmann::json& body, const SamplerParams& defaults,
                                 const RequestLimits& limits);

// Strict standard base64 (padding optional, whitespace ignored). Throws ApiError naming `what`.
std::string decode_base64(std::string_view text, const std::string& what, size_t max_bytes);
std::string encode_base64(std::string_view bytes);
// Constant-time string comparison (for API keys).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace ug::server
