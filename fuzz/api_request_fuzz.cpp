// Request JSON -> internal request conversion (all four API flavours): any input either parses or
// throws ApiError; nothing else may escape, crash or trip a sanitizer.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

#include "server/api_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json body = nlohmann::json::parse(text, nullptr, false);
  if (body.is_discarded()) return 0;
  ug::server::RequestLimits limits;
  limits.max_media_bytes = 1 << 16;
  limits.allow_remote_media = size % 2 == 0;
  const ug::SamplerParams defaults;
  using Parser = ug::server::ApiRequest (*)(const nlohmann::json&, const ug::SamplerParams&,
                                            const ug::server::RequestLimits&);
  for (Parser parse : {&ug::server::parse_openai_chat, &ug::server::parse_openai_completion,
                       &ug::server::parse_ollama_chat, &ug::server::parse_ollama_generate}) {
    try {
      const ug::server::ApiRequest r = parse(body, defaults, limits);
      (void)r.messages.dump();
    } catch (const ug::server::ApiError&) {
    }
  }
  return 0;
}
