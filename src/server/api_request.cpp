#include "server/api_request.h"

#include <array>
#include <cmath>

#include "util/error.h"

namespace ug::server {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr size_t kMaxStops = 16;
constexpr size_t kMaxStopLength = 256;

std::string type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

[[noreturn]] void bad_type(const std::string& param, const char* want, const json& got) {
  throw ApiError(400, "'" + param + "' must be " + want + ", got " + type_name(got), param);
}

const json* member(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

double get_number(const json& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) bad_type(param, "a number", v);
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    throw ApiError(400,
                   "'" + param + "' must be between " + json(lo).dump() + " and " +
                       json(hi).dump() + ", got " + v.dump(),
                   param);
  }
  return d;
}

int64_t get_int(const json& v, const std::string& param, int64_t lo, int64_t hi) {
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && d >= double(lo) && d <= double(hi)) {
      return int64_t(d);
    }
  }
  if (!v.is_number_integer()) bad_type(param, "an integer", v);
  int64_t x;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    x = u > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(u);
  } else {
    x = v.get<int64_t>();
  }
  if (x < lo || x > hi) {
    throw ApiError(400,
                   "'" + param + "' must be between " + std::to_string(lo) + " and " +
                       std::to_string(hi) + ", got " + v.dump(),
                   param);
  }
  return x;
}

bool get_bool(const json& v, const std::string& param) {
  if (!v.is_boolean()) bad_type(param, "a boolean", v);
  return v.get<bool>();
}

const std::string& get_string(const json& v, const std::string& param) {
  if (!v.is_string()) bad_type(param, "a string", v);
  return v.get_ref<const std::string&>();
}

void require_object(const json& body) {
  if (!body.is_object()) throw ApiError(400, "the request body must be a JSON object");
}

std::string optional_model(const json& body) {
  const json* m = member(body, "model");
  return m ? get_string(*m, "model") : std::string();
}

std::vector<std::string> parse_stop(const json& v, const std::string& param) {
  std::vector<std::string> stops;
  if (v.is_string()) {
    stops.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > kMaxStops) {
      throw ApiError(400, "'" + param + "' has more than " + std::to_string(kMaxStops) + " entries",
                     param);
    }
    for (size_t i = 0; i < v.size(); ++i) {
      stops.push_back(get_string(v[i], param + "[" + std::to_string(i) + "]"));
    }
  } else {
    bad_type(param, "a string or an array of strings", v);
  }
  for (const std::string& s : stops) {
    if (s.empty() || s.size() > kMaxStopLength) {
      throw ApiError(400, "'" + param + "' entries must be 1 to 256 bytes long", param);
    }
  }
  return stops;
}

// OpenAI-style sampling fields (also Ollama's options under their own names).
void parse_openai_sampling(const json& body, ApiRequest& r, const RequestLimits& limits) {
  SamplerParams& s = r.sampling;
  if (const json* v = member(body, "temperature"))
    s.temperature = float(get_number(*v, "temperature", 0, 2));
  if (const json* v = member(body, "top_p")) s.top_p = float(get_number(*v, "top_p", 0, 1));
  if (const json* v = member(body, "top_k")) s.top_k = int32_t(get_int(*v, "top_k", -1, 1 << 30));
  if (const json* v = member(body, "min_p")) s.min_p = float(get_number(*v, "min_p", 0, 1));
  if (const json* v = member(body, "presence_penalty")) {
    s.presence_penalty = float(get_number(*v, "presence_penalty", -2, 2));
  }
  if (const json* v = member(body, "frequency_penalty")) {
    s.frequency_penalty = float(get_number(*v, "frequency_penalty", -2, 2));
  }
  if (const json* v = member(body, "repetition_penalty")) {
    s.repetition_penalty = float(get_number(*v, "repetition_penalty", 0.01, 10));
  }
  if (const json* v = member(body, "seed"))
    s.seed = uint64_t(get_int(*v, "seed", INT64_MIN, INT64_MAX));
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (const json* v = member(body, key)) {
      r.max_tokens = int(get_int(*v, key, 0, limits.max_tokens_limit));
      break;
    }
  }
  if (const json* v = member(body, "stop")) r.stop = parse_stop(*v, "stop");
  if (const json* v = member(body, "n")) {
    if (get_int(*v, "n", 1, 128) != 1) throw ApiError(400, "only 'n': 1 is supported", "n");
  }
  if (const json* v = member(body, "logprobs")) {
    if (get_bool(*v, "logprobs")) throw ApiError(400, "'logprobs' is not supported", "logprobs");
  }
  if (const json* v = member(body, "stream")) r.stream = get_bool(*v, "stream");
  if (const json* v = member(body, "ignore_eos")) r.ignore_eos = get_bool(*v, "ignore_eos");
  if (const json* v = member(body, "stream_options")) {
    if (!v->is_object()) bad_type("stream_options", "an object", *v);
    if (const json* u = member(*v, "include_usage")) {
      r.include_usage = get_bool(*u, "stream_options.include_usage");
    }
  }
}

// Compiles a response schema for constrained decoding; unsupported keywords are a 400 naming them.
void set_schema(const json& schema, bool strict, const std::string& param, ApiRequest& r) {
  if (!schema.is_object()) bad_type(param, "an object", schema);
  try {
    r.schema = JsonSchema::compile(schema, strict);
  } catch (const Error& e) {
    throw ApiError(400, "'" + param + "': " + e.what(), param);
  }
  r.json = JsonTop::kAny;
  r.json_schema = schema;
}

void parse_response_format(const json& v, ApiRequest& r) {
  if (!v.is_object()) bad_type("response_format", "an object", v);
  const json* t = member(v, "type");
  if (!t) throw ApiError(400, "'response_format.type' is required", "response_format.type");
  const std::string& type = get_string(*t, "response_format.type");
  if (type == "text") return;
  if (type == "json_object") {
    r.json = JsonTop::kObject;
    return;
  }
  if (type == "json_schema") {
    const json* js = member(v, "json_schema");
    if (!js || !js->is_object()) {
      throw ApiError(400, "'response_format.json_schema' must be an object",
                     "response_format.json_schema");
    }
    const json* schema = member(*js, "schema");
    bool strict = false;
    if (const json* st = member(*js, "strict")) {
      strict = get_bool(*st, "response_format.json_schema.strict");
    }
    if (schema) {
      set_schema(*schema, strict, "response_format.json_schema.schema", r);
    } else {
      r.json = JsonTop::kObject;
    }
    return;
  }
  throw ApiError(
      400, "'response_format.type' must be text, json_object or json_schema, got '" + type + "'",
      "response_format.type");
}

// "data:image/png;base64,...." -> bytes; http(s) URLs only when allowed.
void add_url_media(const std::string& url, MediaKind kind, const std::string& where,
                   const RequestLimits& limits, ApiRequest& r) {
  MediaInput m;
  m.kind = kind;
  m.name = where;
  if (url.rfind("data:", 0) == 0) {
    const size_t comma = url.find(',');
    if (comma == std::string::npos) throw ApiError(400, where + ": malformed data: URI", where);
    const std::string header = url.substr(5, comma - 5);
    if (header.size() < 7 || header.compare(header.size() - 7, 7, ";base64") != 0) {
      throw ApiError(400, where + ": only base64 data: URIs are supported", where);
    }
    m.data = decode_base64(std::string_view(url).substr(comma + 1), where, limits.max_media_bytes);
  } else if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0) {
    if (!limits.allow_remote_media) {
      throw ApiError(400,
                     where +
                         ": remote media URLs are disabled on this server (start it with "
                         "--allow-remote-media, or send a base64 data: URI)",
                     where);
    }
    m.url = url;
  } else {
    throw ApiError(400,
                   where + ": the URL must be a data: URI" +
                       std::string(limits.allow_remote_media ? " or http(s)" : ""),
                   where);
  }
  r.media.push_back(std::move(m));
  if (int(r.media.size()) > limits.max_media) {
    throw ApiError(400,
                   "too many images/audio clips (the limit is " + std::to_string(limits.max_media) +
                       " per request)",
                   where);
  }
}

void add_base64_media(const json& v, MediaKind kind, const std::string& where,
                      const RequestLimits& limits, ApiRequest& r) {
  const std::string& text = get_string(v, where);
  MediaInput m;
  m.kind = kind;
  m.name = where;
  m.data = decode_base64(text, where, limits.max_media_bytes);
  if (m.data.empty()) throw ApiError(400, where + ": empty media data", where);
  r.media.push_back(std::move(m));
  if (int(r.media.size()) > limits.max_media) {
    throw ApiError(400,
                   "too many images/audio clips (the limit is " + std::to_string(limits.max_media) +
                       " per request)",
                   where);
  }
}

std::string role_of(const json& msg, const std::string& where) {
  const json* role = member(msg, "role");
  if (!role) throw ApiError(400, "'" + where + ".role' is required", where + ".role");
  const std::string& s = get_string(*role, where + ".role");
  if (s == "developer") return "system";
  if (s != "system" && s != "user" && s != "assistant" && s != "tool") {
    throw ApiError(
        400,
        "'" + where + ".role' must be system, developer, user, assistant or tool, got '" + s + "'",
        where + ".role");
  }
  return s;
}

ordered_json parse_tool_arguments(const json& v, const std::string& where) {
  if (v.is_object()) return ordered_json(v);
  const std::string& text = get_string(v, where);
  ordered_json args = ordered_json::parse(text, nullptr, false);
  if (args.is_discarded() || !args.is_object()) {
    throw ApiError(400, "'" + where + "' must be a JSON object (as a string)", where);
  }
  return args;
}

ordered_json parse_tools(const json& v) {
  if (!v.is_array()) bad_type("tools", "an array", v);
  ordered_json tools = ordered_json::array();
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = "tools[" + std::to_string(i) + "]";
    const json& t = v[i];
    if (!t.is_object()) bad_type(where, "an object", t);
    if (const json* type = member(t, "type");
        type && get_string(*type, where + ".type") != "function") {
      throw ApiError(400, "'" + where + ".type' must be \"function\"", where + ".type");
    }
    const json* f = member(t, "function");
    if (!f || !f->is_object()) {
      throw ApiError(400, "'" + where + ".function' must be an object", where + ".function");
    }
    const json* name = member(*f, "name");
    if (!name)
      throw ApiError(400, "'" + where + ".function.name' is required", where + ".function.name");
    const std::string& n = get_string(*name, where + ".function.name");
    if (n.empty() || n.size() > 128) {
      throw ApiError(400, "'" + where + ".function.name' must be 1 to 128 characters",
                     where + ".function.name");
    }
    for (char c : n) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) {
        throw ApiError(400, "'" + where + ".function.name' may contain only letters, digits, _ - .",
                       where + ".function.name");
      }
    }
    ordered_json fn = {{"name", n}, {"description", ""}};
    if (const json* d = member(*f, "description"))
      fn["description"] = get_string(*d, where + ".function.description");
    if (const json* p = member(*f, "parameters")) {
      if (!p->is_object()) bad_type(where + ".function.parameters", "an object", *p);
      fn["parameters"] = ordered_json(*p);
    }
    tools.push_back({{"type", "function"}, {"function", fn}});
  }
  return tools;
}

void apply_tool_choice(const json& v, ApiRequest& r) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "none") {
      r.tools = ordered_json::array();
      r.tool_choice = ToolChoice::kNone;
    } else if (s == "required") {
      if (r.tools.empty()) {
        throw ApiError(400, "'tool_choice' is \"required\" but 'tools' is empty", "tool_choice");
      }
      r.tool_choice = ToolChoice::kRequired;
    } else if (s != "auto") {
      throw ApiError(400, "'tool_choice' must be none, auto, required or a function",
                     "tool_choice");
    }
    return;
  }
  if (!v.is_object()) bad_type("tool_choice", "a string or an object", v);
  const json* f = member(v, "function");
  const json* name = f && f->is_object() ? member(*f, "name") : nullptr;
  if (!name) throw ApiError(400, "'tool_choice.function.name' is required", "tool_choice");
  const std::string& n = get_string(*name, "tool_choice.function.name");
  ordered_json kept = ordered_json::array();
  for (const auto& t : r.tools) {
    if (t["function"]["name"] == n) kept.push_back(t);
  }
  if (kept.empty())
    throw ApiError(400, "'tool_choice' names '" + n + "', which is not in 'tools'", "tool_choice");
  r.tools = kept;
  r.tool_choice = ToolChoice::kNamed;
}

// Text, image and audio parts of an OpenAI message into the template's parts.
ordered_json parse_openai_content(const json& content, const std::string& where, bool allow_media,
                                  const RequestLimits& limits, ApiRequest& r) {
  if (content.is_string()) return content;
  if (!content.is_array()) bad_type(where, "a string or an array of content parts", content);
  ordered_json parts = ordered_json::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string pw = where + "[" + std::to_string(i) + "]";
    const json& p = content[i];
    if (!p.is_object()) bad_type(pw, "an object", p);
    const json* type = member(p, "type");
    if (!type) throw ApiError(400, "'" + pw + ".type' is required", pw + ".type");
    const std::string& t = get_string(*type, pw + ".type");
    if (t == "text") {
      const json* text = member(p, "text");
      if (!text) throw ApiError(400, "'" + pw + ".text' is required", pw + ".text");
      parts.push_back({{"type", "text"}, {"text", get_string(*text, pw + ".text")}});
    } else if (t == "image_url" && allow_media) {
      const json* iu = member(p, "image_url");
      if (!iu) throw ApiError(400, "'" + pw + ".image_url' is required", pw + ".image_url");
      const json* url = iu->is_object() ? member(*iu, "url") : iu;
      if (!url)
        throw ApiError(400, "'" + pw + ".image_url.url' is required", pw + ".image_url.url");
      add_url_media(get_string(*url, pw + ".image_url.url"), MediaKind::kImage, pw, limits, r);
      parts.push_back({{"type", "image"}});
    } else if (t == "input_audio" && allow_media) {
      const json* ia = member(p, "input_audio");
      if (!ia || !ia->is_object()) {
        throw ApiError(400, "'" + pw + ".input_audio' must be an object", pw + ".input_audio");
      }
      const json* data = member(*ia, "data");
      if (!data)
        throw ApiError(400, "'" + pw + ".input_audio.data' is required", pw + ".input_audio.data");
      if (const json* fmt = member(*ia, "format")) get_string(*fmt, pw + ".input_audio.format");
      add_base64_media(*data, MediaKind::kAudio, pw + ".input_audio.data", limits, r);
      parts.push_back({{"type", "audio"}});
    } else {
      throw ApiError(400, "'" + pw + ".type' '" + t + "' is not supported here", pw + ".type");
    }
  }
  return parts;
}

}  // namespace

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Compares over the longer length so the time depends on neither the content nor where the
  // first difference is.
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = unsigned(a.size() != b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= unsigned(x ^ y);
  }
  return diff == 0;
}

std::string decode_base64(std::string_view text, const std::string& what, size_t max_bytes) {
  static const std::array<int8_t, 256> table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = int8_t(i);
    return t;
  }();
  if (text.size() / 4 * 3 > max_bytes + 3) {
    throw ApiError(
        413, what + ": media larger than the " + std::to_string(max_bytes >> 20) + " MiB limit",
        what);
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    const int8_t v = table[static_cast<unsigned char>(c)];
    if (v < 0 || pad > 0) {
      throw ApiError(400, what + ": invalid base64 at byte " + std::to_string(i), what);
    }
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xff));
    }
  }
  // 6 leftover bits cannot encode a byte; padding beyond two is malformed.
  if (bits >= 6 || pad > 2) throw ApiError(400, what + ": invalid base64 length", what);
  return out;
}

std::string encode_base64(std::string_view bytes) {
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 |
                       uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(alphabet[(v >> s) & 63]);
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

ApiRequest parse_openai_chat(const json& body, const SamplerParams& defaults,
                             const RequestLimits& limits) {
  require_object(body);
  ApiRequest r;
  r.flavor = ApiFlavor::kOpenAIChat;
  r.sampling = defaults;
  r.model = optional_model(body);
  parse_openai_sampling(body, r, limits);
  if (const json* v = member(body, "tools")) r.tools = parse_tools(*v);
  if (const json* v = member(body, "tool_choice")) apply_tool_choice(*v, r);
  if (const json* v = member(body, "response_format")) parse_response_format(*v, r);
  if (r.json && (r.tool_choice == ToolChoice::kRequired || r.tool_choice == ToolChoice::kNamed)) {
    throw ApiError(
        400, "'tool_choice' that forces a tool call cannot be combined with 'response_format'",
        "tool_choice");
  }
  if (const json* v = member(body, "reasoning_effort")) {
    const std::string& e = get_string(*v, "reasoning_effort");
    if (e == "none" || e == "minimal") {
      r.enable_thinking = false;
    } else if (e == "low" || e == "medium" || e == "high") {
      r.enable_thinking = true;
    } else {
      throw ApiError(400, "'reasoning_effort' must be none, minimal, low, medium or high",
                     "reasoning_effort");
    }
  }
  if (const json* v = member(body, "chat_template_kwargs")) {
    if (!v->is_object()) bad_type("chat_template_kwargs", "an object", *v);
    if (const json* t = member(*v, "enable_thinking")) {
      r.enable_thinking = get_bool(*t, "chat_template_kwargs.enable_thinking");
    }
  }
  const json* messages = member(body, "messages");
  if (!messages) throw ApiError(400, "'messages' is required", "messages");
  if (!messages->is_array()) bad_type("messages", "an array", *messages);
  if (messages->empty()) throw ApiError(400, "'messages' must not be empty", "messages");
  for (size_t i = 0; i < messages->size(); ++i) {
    const std::string where = "messages[" + std::to_string(i) + "]";
    const json& m = (*messages)[i];
    if (!m.is_object()) bad_type(where, "an object", m);
    const std::string role = role_of(m, where);
    ordered_json out = {{"role", role}};
    const json* content = member(m, "content");
    if (content) {
      out["content"] =
          parse_openai_content(*content, where + ".content", role == "user", limits, r);
    } else if (role != "assistant") {
      throw ApiError(400, "'" + where + ".content' is required", where + ".content");
    } else {
      out["content"] = "";
    }
    if (role == "system" && out["content"].is_array()) {
      std::string text;  // the template wants a string for the system turn
      for (const auto& p : out["content"]) text += p.value("text", "");
      out["content"] = text;
    }
    if (role == "assistant") {
      if (const json* tc = member(m, "tool_calls")) {
        if (!tc->is_array()) bad_type(where + ".tool_calls", "an array", *tc);
        ordered_json calls = ordered_json::array();
        for (size_t k = 0; k < tc->size(); ++k) {
          const std::string cw = where + ".tool_calls[" + std::to_string(k) + "]";
          const json& c = (*tc)[k];
          if (!c.is_object()) bad_type(cw, "an object", c);
          const json* f = member(c, "function");
          if (!f || !f->is_object())
            throw ApiError(400, "'" + cw + ".function' must be an object", cw + ".function");
          const json* name = member(*f, "name");
          if (!name)
            throw ApiError(400, "'" + cw + ".function.name' is required", cw + ".function.name");
          ordered_json call = {{"type", "function"}};
          if (const json* id = member(c, "id")) call["id"] = get_string(*id, cw + ".id");
          const json* args = member(*f, "arguments");
          call["function"] = {
              {"name", get_string(*name, cw + ".function.name")},
              {"arguments", args ? parse_tool_arguments(*args, cw + ".function.arguments")
                                 : ordered_json::object()}};
          calls.push_back(call);
        }
        if (!calls.empty()) out["tool_calls"] = calls;
      }
      for (const char* key : {"reasoning_content", "reasoning"}) {
        if (const json* t = member(m, key))
          out["reasoning_content"] = get_string(*t, where + "." + key);
      }
    }
    if (role == "tool") {
      if (const json* id = member(m, "tool_call_id"))
        out["tool_call_id"] = get_string(*id, where + ".tool_call_id");
      if (const json* n = member(m, "name")) out["name"] = get_string(*n, where + ".name");
    }
    r.messages.push_back(std::move(out));
  }
  return r;
}

ApiRequest parse_openai_completion(const json& body, const SamplerParams& defaults,
                                   const RequestLimits& limits) {
  require_object(body);
  ApiRequest r;
  r.flavor = ApiFlavor::kOpenAICompletion;
  r.sampling = defaults;
  r.raw = true;
  r.max_tokens = 16;  // the OpenAI default for completions
  r.model = optional_model(body);
  parse_openai_sampling(body, r, limits);
  const json* prompt = member(body, "prompt");
  if (!prompt) throw ApiError(400, "'prompt' is required", "prompt");
  if (prompt->is_string()) {
    r.prompt = prompt->get<std::string>();
  } else if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    r.prompt = (*prompt)[0].get<std::string>();
  } else {
    bad_type("prompt", "a string (or an array of one string)", *prompt);
  }
  if (r.prompt.empty()) throw ApiError(400, "'prompt' must not be empty", "prompt");
  if (const json* v = member(body, "echo")) r.echo = get_bool(*v, "echo");
  if (const json* v = member(body, "suffix")) {
    if (!get_string(*v, "suffix").empty())
      throw ApiError(400, "'suffix' is not supported", "suffix");
  }
  if (const json* v = member(body, "response_format")) parse_response_format(*v, r);
  return r;
}

namespace {

void parse_ollama_options(const json& body, ApiRequest& r, const RequestLimits& limits) {
  if (const json* v = member(body, "stream")) r.stream = get_bool(*v, "stream");
  if (const json* v = member(body, "keep_alive")) {
    if (!v->is_string() && !v->is_number()) bad_type("keep_alive", "a duration", *v);
  }
  if (const json* v = member(body, "think")) {
    if (v->is_boolean()) {
      r.enable_thinking = v->get<bool>();
    } else if (v->is_string() && (*v == "low" || *v == "medium" || *v == "high")) {
      r.enable_thinking = true;
    } else {
      throw ApiError(400, "'think' must be true, false, \"low\", \"medium\" or \"high\"", "think");
    }
  }
  if (const json* v = member(body, "format")) {
    if (v->is_string()) {
      if (*v != "json" && *v != "")
        throw ApiError(400, "'format' must be \"json\" or a JSON schema", "format");
      if (*v == "json") r.json = JsonTop::kObject;
    } else if (v->is_object()) {
      set_schema(*v, false, "format", r);
    } else {
      bad_type("format", "\"json\" or a JSON schema object", *v);
    }
  }
  if (const json* o = member(body, "options")) {
    if (!o->is_object()) bad_type("options", "an object", *o);
    SamplerParams& s = r.sampling;
    if (const json* v = member(*o, "temperature"))
      s.temperature = float(get_number(*v, "options.temperature", 0, 100));
    if (const json* v = member(*o, "top_p")) s.top_p = float(get_number(*v, "options.top_p", 0, 1));
    if (const json* v = member(*o, "top_k"))
      s.top_k = int32_t(get_int(*v, "options.top_k", -1, 1 << 30));
    if (const json* v = member(*o, "min_p")) s.min_p = float(get_number(*v, "options.min_p", 0, 1));
    if (const json* v = member(*o, "seed"))
      s.seed = uint64_t(get_int(*v, "options.seed", INT64_MIN, INT64_MAX));
    if (const json* v = member(*o, "repeat_penalty"))
      s.repetition_penalty = float(get_number(*v, "options.repeat_penalty", 0.01, 10));
    if (const json* v = member(*o, "presence_penalty"))
      s.presence_penalty = float(get_number(*v, "options.presence_penalty", -2, 2));
    if (const json* v = member(*o, "frequency_penalty"))
      s.frequency_penalty = float(get_number(*v, "options.frequency_penalty", -2, 2));
    if (const json* v = member(*o, "repeat_last_n"))
      s.penalty_last_n = int32_t(get_int(*v, "options.repeat_last_n", -1, 1 << 20));
    if (const json* v = member(*o, "num_predict")) {
      const int64_t n = get_int(*v, "options.num_predict", -2, limits.max_tokens_limit);
      if (n >= 0) r.max_tokens = int(n);
    }
    if (const json* v = member(*o, "stop")) r.stop = parse_stop(*v, "options.stop");
  }
}

void add_ollama_images(const json& m, const std::string& where, const RequestLimits& limits,
                       ApiRequest& r, ordered_json& parts) {
  const json* images = member(m, "images");
  if (!images) return;
  if (!images->is_array()) bad_type(where + ".images", "an array of base64 strings", *images);
  for (size_t i = 0; i < images->size(); ++i) {
    add_base64_media((*images)[i], MediaKind::kImage, where + ".images[" + std::to_string(i) + "]",
                     limits, r);
    parts.push_back({{"type", "image"}});
  }
}

}  // namespace

ApiRequest parse_ollama_chat(const json& body, const SamplerParams& defaults,
                             const RequestLimits& limits) {
  require_object(body);
  ApiRequest r;
  r.flavor = ApiFlavor::kOllamaChat;
  r.sampling = defaults;
  r.stream = true;  // Ollama streams unless told otherwise
  r.model = optional_model(body);
  if (r.model.empty()) throw ApiError(400, "'model' is required", "model");
  parse_ollama_options(body, r, limits);
  if (const json* v = member(body, "tools")) r.tools = parse_tools(*v);
  const json* messages = member(body, "messages");
  if (!messages) throw ApiError(400, "'messages' is required", "messages");
  if (!messages->is_array()) bad_type("messages", "an array", *messages);
  for (size_t i = 0; i < messages->size(); ++i) {
    const std::string where = "messages[" + std::to_string(i) + "]";
    const json& m = (*messages)[i];
    if (!m.is_object()) bad_type(where, "an object", m);
    const std::string role = role_of(m, where);
    ordered_json out = {{"role", role}};
    const json* content = member(m, "content");
    const std::string text = content ? get_string(*content, where + ".content") : std::string();
    ordered_json parts = ordered_json::array();
    if (role == "user") add_ollama_images(m, where, limits, r, parts);
    if (parts.empty()) {
      out["content"] = text;
    } else {
      if (!text.empty()) parts.push_back({{"type", "text"}, {"text", text}});
      out["content"] = parts;
    }
    if (role == "assistant") {
      if (const json* tc = member(m, "tool_calls")) {
        if (!tc->is_array()) bad_type(where + ".tool_calls", "an array", *tc);
        ordered_json calls = ordered_json::array();
        for (size_t k = 0; k < tc->size(); ++k) {
          const std::string cw = where + ".tool_calls[" + std::to_string(k) + "]";
          const json* f = (*tc)[k].is_object() ? member((*tc)[k], "function") : nullptr;
          if (!f || !f->is_object())
            throw ApiError(400, "'" + cw + ".function' must be an object", cw);
          const json* name = member(*f, "name");
          if (!name) throw ApiError(400, "'" + cw + ".function.name' is required", cw);
          const json* args = member(*f, "arguments");
          calls.push_back(
              {{"type", "function"},
               {"function",
                {{"name", get_string(*name, cw + ".function.name")},
                 {"arguments", args ? parse_tool_arguments(*args, cw + ".function.arguments")
                                    : ordered_json::object()}}}});
        }
        if (!calls.empty()) out["tool_calls"] = calls;
      }
      if (const json* t = member(m, "thinking"))
        out["reasoning_content"] = get_string(*t, where + ".thinking");
    }
    if (role == "tool") {
      for (const char* key : {"tool_name", "name"}) {
        if (const json* n = member(m, key)) out["name"] = get_string(*n, where + "." + key);
      }
    }
    r.messages.push_back(std::move(out));
  }
  return r;
}

ApiRequest parse_ollama_generate(const json& body, const SamplerParams& defaults,
                                 const RequestLimits& limits) {
  require_object(body);
  ApiRequest r;
  r.flavor = ApiFlavor::kOllamaGenerate;
  r.sampling = defaults;
  r.stream = true;
  r.model = optional_model(body);
  if (r.model.empty()) throw ApiError(400, "'model' is required", "model");
  parse_ollama_options(body, r, limits);
  std::string prompt;
  if (const json* v = member(body, "prompt")) prompt = get_string(*v, "prompt");
  if (const json* v = member(body, "suffix")) {
    if (!get_string(*v, "suffix").empty())
      throw ApiError(400, "'suffix' is not supported", "suffix");
  }
  if (const json* v = member(body, "template")) get_string(*v, "template");  // ignored
  if (const json* v = member(body, "raw")) r.raw = get_bool(*v, "raw");
  if (r.raw) {
    if (member(body, "images")) throw ApiError(400, "'images' cannot be used with 'raw'", "images");
    r.prompt = prompt;
    return r;
  }
  if (const json* v = member(body, "system")) {
    const std::string& s = get_string(*v, "system");
    if (!s.empty()) r.messages.push_back({{"role", "system"}, {"content", s}});
  }
  ordered_json parts = ordered_json::array();
  add_ollama_images(body, "", limits, r, parts);
  if (parts.empty()) {
    r.messages.push_back({{"role", "user"}, {"content", prompt}});
  } else {
    if (!prompt.empty()) parts.push_back({{"type", "text"}, {"text", prompt}});
    r.messages.push_back({{"role", "user"}, {"content", parts}});
  }
  r.prompt = prompt;
  return r;
}

}  // namespace ug::server
