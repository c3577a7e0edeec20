#include "runtime/chat_session.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "util/error.h"

namespace ug {

using nlohmann::ordered_json;

ChatSession::ChatSession(const gemma4::Model& model, const Tokenizer& tokenizer, ThreadPool& pool,
                         ChatOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(std::move(options)),
      decoder_(model,
               gemma4::DecoderOptions{options_.n_ctx, options_.n_ubatch, options_.cache_type,
                                      options_.commit_kv, options_.global_cache_type},
               pool),
      // The model's own template is the source of truth; the official one when it has none.
      template_(!options_.chat_template.empty() ? options_.chat_template
                                                : tokenizer.data().chat_template),
      pool_(pool) {
  validate(options_.sampling);
}

void ChatSession::set_system(const std::string& text) {
  if (!messages_.empty() && messages_[0].value("role", "") == "system") {
    messages_.erase(messages_.begin());
  }
  if (!text.empty()) {
    messages_.insert(messages_.begin(), ordered_json{{"role", "system"}, {"content", text}});
  }
}

void ChatSession::reset() {
  ordered_json kept = ordered_json::array();
  if (!messages_.empty() && messages_[0].value("role", "") == "system")
    kept.push_back(messages_[0]);
  messages_ = kept;
  media_.clear();
}

void ChatSession::set_projector(const gemma4::Projector* projector, MediaOptions media_options) {
  projector_ = projector;
  media_options_ = media_options;
}

namespace {

std::string hash_text(uint64_t h) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The options that shaped an embedding, kept in the saved message part so /load reproduces it.
void options_to_part(MediaKind kind, const MediaOptions& o, ordered_json& part) {
  if (kind == MediaKind::kImage) part["image_tokens"] = o.image_budget;
  if (kind == MediaKind::kAudio || kind == MediaKind::kVideo) {
    part["audio_clip_seconds"] = o.audio_clip_seconds;
  }
  if (kind == MediaKind::kVideo) {
    part["video_frames"] = o.video_frames;
    if (o.video_fps > 0) part["video_fps"] = o.video_fps;
    part["video_audio"] = o.video_audio;
  }
}

MediaOptions options_from_part(const ordered_json& part, MediaOptions o) {
  auto num = [&](const char* key, double fallback) {
    return part.contains(key) && part[key].is_number() ? part[key].get<double>() : fallback;
  };
  o.image_budget = int(num("image_tokens", o.image_budget));
  o.audio_clip_seconds = num("audio_clip_seconds", o.audio_clip_seconds);
  o.video_frames = int(num("video_frames", o.video_frames));
  o.video_fps = num("video_fps", 0);
  if (part.contains("video_audio") && part["video_audio"].is_boolean()) {
    o.video_audio = part["video_audio"].get<bool>();
  }
  return o;
}

}  // namespace

const MediaEmbedding& ChatSession::attach(MediaKind kind, const std::string& path) {
  if (!projector_) {
    throw Error(path + ": " + media_kind_name(kind) +
                " input needs the multimodal projector (--mmproj FILE)");
  }
  auto m = std::make_shared<MediaEmbedding>(
      embed_media_file(*projector_, kind, path, media_options_, pool_));
  // Saved conversations refer to the file by absolute path, so /load works from anywhere.
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (!ec) m->source = abs.lexically_normal().string();
  pending_.push_back(m);
  return *m;
}

AssembledPrompt ChatSession::assemble(const std::string& prompt_text) const {
  if (media_.empty()) {
    EncodeOptions eo;
    eo.add_bos = false;  // the template writes <bos> itself
    eo.parse_special = true;
    AssembledPrompt a;
    a.input.tokens = tokenizer_.encode(prompt_text, eo);
    a.ids = a.input.tokens;
    a.cache_keys = a.input.tokens;
    return a;
  }
  std::vector<const MediaEmbedding*> items;
  for (const auto& m : media_) items.push_back(m.get());
  return assemble_prompt(prompt_text, tokenizer_, items, model_.config.n_embd);
}

ordered_json ChatSession::save() const {
  return ordered_json{{"messages", messages_}, {"enable_thinking", options_.enable_thinking}};
}

void ChatSession::load(const ordered_json& conversation) {
  if (!conversation.is_object() || !conversation.contains("messages") ||
      !conversation["messages"].is_array()) {
    throw Error("conversation: expected an object with a \"messages\" array");
  }
  for (size_t i = 0; i < conversation["messages"].size(); ++i) {
    const auto& m = conversation["messages"][i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      throw Error("conversation: messages[" + std::to_string(i) +
                  "]: expected an object with a role");
    }
  }
  // Embeddings are not saved: decode and embed the media parts again, in placeholder order, before
  // replacing anything.
  std::vector<std::shared_ptr<const MediaEmbedding>> media;
  const auto& messages = conversation["messages"];
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& content = messages[i].contains("content") ? messages[i]["content"] : ordered_json();
    if (!content.is_array()) continue;
    for (size_t k = 0; k < content.size(); ++k) {
      const auto& part = content[k];
      MediaKind kind;
      if (!part.is_object() || !part.contains("type") || !part["type"].is_string() ||
          !parse_media_kind(part["type"].get<std::string>(), &kind)) {
        continue;
      }
      const std::string where =
          "conversation: messages[" + std::to_string(i) + "].content[" + std::to_string(k) + "]";
      if (!part.contains("source") || !part["source"].is_string()) {
        throw Error(where + ": " + media_kind_name(kind) + " part without a \"source\" file");
      }
      const std::string source = part["source"].get<std::string>();
      if (!projector_) {
        throw Error(where + ": " + source + ": the conversation has " + media_kind_name(kind) +
                    " input, which needs the multimodal projector (--mmproj FILE)");
      }
      if (!std::filesystem::exists(source)) {
        throw Error(where + ": " + source + ": the " + media_kind_name(kind) +
                    " file of the saved conversation no longer exists");
      }
      auto m = std::make_shared<MediaEmbedding>(embed_media_file(
          *projector_, kind, source, options_from_part(part, media_options_), pool_));
      if (part.contains("content_hash") && part["content_hash"].is_string() &&
          part["content_hash"].get<std::string>() != hash_text(m->content_hash)) {
        throw Error(where + ": " + source + ": the file changed since the conversation was saved");
      }
      m->source = source;
      media.push_back(std::move(m));
    }
  }
  messages_ = messages;
  media_ = std::move(media);
  pending_.clear();
  if (conversation.contains("enable_thinking") && conversation["enable_thinking"].is_boolean()) {
    options_.enable_thinking = conversation["enable_thinking"].get<bool>();
  }
}

void ChatSession::add_message(ordered_json message) {
  messages_.push_back(std::move(message));
}

std::string ChatSession::render_prompt() const {
  ordered_json inputs;
  inputs["messages"] = messages_;
  if (!options_.tools.empty()) inputs["tools"] = options_.tools;
  inputs["add_generation_prompt"] = true;
  inputs["enable_thinking"] = options_.enable_thinking;
  const int32_t bos = tokenizer_.bos_id();
  inputs["bos_token"] = bos >= 0 ? tokenizer_.token_piece(bos, true) : std::string();
  return template_.render(inputs);
}

void ChatSession::prefill(const AssembledPrompt& assembled, ChatStats* stats) {
  const std::vector<int32_t>& prompt = assembled.cache_keys;
  if (int64_t(prompt.size()) >= int64_t(options_.n_ctx)) {
    throw Error("the prompt has " + std::to_string(prompt.size()) +
                " tokens, which does not fit the context length " + std::to_string(options_.n_ctx) +
                " (raise --ctx or shorten the conversation)");
  }
  // Reuse the cached prefix; at least the last prompt token is recomputed to get its logits.
  size_t common = 0;
  while (common < cached_.size() && common < prompt.size() && cached_[common] == prompt[common]) {
    ++common;
  }
  if (common == prompt.size()) --common;
  // Restart at the beginning of a soft-token run: a bidirectional block is never split, and the
  // embedding rows are sliced per run.
  const auto& in = assembled.input;
  while (common > 0 && in.tokens[common] < 0 && in.tokens[common - 1] < 0) --common;
  if (common < cached_.size()) {
    const int rollback = int(cached_.size() - common);
    if (rollback <= decoder_.cache().rollback_limit()) {
      decoder_.cache().truncate(int(common));
    } else {
      decoder_.cache().clear();  // sliding rings no longer hold what precedes the change
      common = 0;
    }
    cached_.resize(common);
  }
  gemma4::Output out;
  gemma4::Input rest;
  const auto split = std::ptrdiff_t(common);
  rest.tokens.assign(in.tokens.begin() + split, in.tokens.end());
  const auto skipped_rows = std::count(in.tokens.begin(), in.tokens.begin() + split, -1);
  rest.embeddings.assign(in.embeddings.begin() + skipped_rows * model_.config.n_embd,
                         in.embeddings.end());
  if (!in.block.empty()) rest.block.assign(in.block.begin() + split, in.block.end());
  const auto t0 = std::chrono::steady_clock::now();
  decoder_.eval(rest, gemma4::Outputs::kLast, &out);
  stats->prompt_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  cached_ = prompt;
  stats->prompt_tokens = int(prompt.size());
  stats->prompt_evaluated = int(rest.tokens.size());
  last_logits_ = std::move(out.logits);
  last_hidden_ = std::move(out.hidden);
}

ChatReply ChatSession::send(const std::string& user_text,
                            const std::function<void(const OutputEvent&)>& on_event,
                            const std::atomic<bool>* cancel) {
  if (pending_.empty()) {
    add_message(ordered_json{{"role", "user"}, {"content", user_text}});
  } else {
    ordered_json parts = ordered_json::array();
    for (const auto& m : pending_) {
      ordered_json part{{"type", media_kind_name(m->kind)}, {"source", m->source}};
      options_to_part(m->kind, media_options_, part);
      part["content_hash"] = hash_text(m->content_hash);
      parts.push_back(std::move(part));
    }
    if (!user_text.empty()) parts.push_back({{"type", "text"}, {"text", user_text}});
    add_message(ordered_json{{"role", "user"}, {"content", parts}});
    media_.insert(media_.end(), pending_.begin(), pending_.end());
    pending_.clear();
  }
  return reply(on_event, cancel);
}

ChatReply ChatSession::reply(const std::function<void(const OutputEvent&)>& on_event,
                             const std::atomic<bool>* cancel) {
  ChatReply r;
  const AssembledPrompt assembled = assemble(render_prompt());
  prefill(assembled, &r.stats);

  Sampler sampler(options_.sampling, std::vector<int32_t>(model_.suppress_tokens.begin(),
                                                          model_.suppress_tokens.end()));
  // Markers the parser needs (channel, tool call, string delimiter) are user-defined tokens, which
  // render without render_special; control tokens (turn markers, unused ids) stay out of the text.
  StreamDecoder stream(tokenizer_, /*render_special=*/false);
  OutputParser parser;
  std::vector<OutputEvent> events;
  auto dispatch = [&]() {
    for (const OutputEvent& e : events) {
      switch (e.type) {
        case OutputEventType::kContent:
          r.content += e.text;
          break;
        case OutputEventType::kThinking:
          r.thinking += e.text;
          break;
        case OutputEventType::kToolCall:
          r.tool_calls.push_back(e.tool_call);
          break;
        case OutputEventType::kError:
          r.errors.push_back({e.text, e.error});
          break;
      }
      if (on_event) on_event(e);
    }
    events.clear();
  };

  std::vector<int32_t> history = assembled.ids;
  std::vector<float> logits = std::move(last_logits_);
  gemma4::Output out;
  const auto t0 = std::chrono::steady_clock::now();
  r.finish_reason = "length";
  // With a drafter, tokens after the first come from draft-verify rounds (runtime/speculative.h).
  std::unique_ptr<SpeculativeGenerator> spec;
  std::vector<int32_t> queued;
  size_t next_queued = 0;
  const size_t prompt_cached = cached_.size();
  spec_stats_ = SpeculativeStats();
  for (int i = 0; i < options_.max_tokens; ++i) {
    if (cancel && cancel->load()) {
      r.finish_reason = "cancelled";
      break;
    }
    int32_t tok;
    if (spec) {
      if (next_queued == queued.size()) {
        if (decoder_.n_past() >= options_.n_ctx) break;
        queued = spec->round(-1, options_.max_tokens - i).emitted;
        next_queued = 0;
        cached_.resize(prompt_cached);
        cached_.insert(cached_.end(), spec->history().begin() + std::ptrdiff_t(prompt_cached),
                       spec->history().end() - 1);
        spec_stats_ = spec->stats();
      }
      tok = queued[next_queued++];
    } else {
      tok = sampler.sample(logits, history);
    }
    if (std::find(model_.eog_tokens.begin(), model_.eog_tokens.end(), tok) !=
        model_.eog_tokens.end()) {
      r.finish_reason = "stop";
      break;
    }
    history.push_back(tok);
    ++r.stats.generated_tokens;
    parser.feed(stream.push(tok), events);
    dispatch();
    if (spec) continue;
    if (decoder_.n_past() >= options_.n_ctx) break;
    if (drafter_ && last_hidden_.size() == size_t(model_.config.n_embd) &&
        history.size() == cached_.size() + 1) {
      spec =
          std::make_unique<SpeculativeGenerator>(decoder_, drafter_, sampler, options_.speculative);
      spec->begin(history, last_hidden_);
      continue;
    }
    decoder_.eval_tokens({tok}, gemma4::Outputs::kLast, &out);
    cached_.push_back(tok);
    logits.swap(out.logits);
  }
  parser.feed(stream.flush(), events);
  parser.finish(events);
  dispatch();
  r.stats.generate_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r.tool_calls.empty() && r.finish_reason == "stop") r.finish_reason = "tool_calls";

  ordered_json msg{{"role", "assistant"}, {"content", r.content}};
  if (!r.tool_calls.empty()) {
    ordered_json calls = ordered_json::array();
    for (const auto& c : r.tool_calls) {
      calls.push_back({{"type", "function"},
                       {"function", {{"name", c.name}, {"arguments", ordered_json(c.arguments)}}}});
    }
    msg["tool_calls"] = calls;
  }
  if (!r.thinking.empty()) msg["reasoning_content"] = r.thinking;
  messages_.push_back(std::move(msg));
  return r;
}

}  // namespace ug
