#include "runtime/chat_session.h"

#include <algorithm>
#include <chrono>

#include "util/error.h"

namespace ug {

using nlohmann::ordered_json;

ChatSession::ChatSession(const gemma4::Model& model, const Tokenizer& tokenizer, ThreadPool& pool,
                         ChatOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(std::move(options)),
      decoder_(model,
               gemma4::DecoderOptions{options_.n_ctx, options_.n_ubatch, options_.cache_type},
               pool),
      // The model's own template is the source of truth; the official one when it has none.
      template_(!options_.chat_template.empty() ? options_.chat_template
                                                : tokenizer.data().chat_template) {
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
  if (!messages_.empty() && messages_[0].value("role", "") == "system") kept.push_back(messages_[0]);
  messages_ = kept;
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
      throw Error("conversation: messages[" + std::to_string(i) + "]: expected an object with a role");
    }
  }
  messages_ = conversation["messages"];
  if (conversation.contains("enable_thinking") && conversation["enable_thinking"].is_boolean()) {
    options_.enable_thinking = conversation["enable_thinking"].get<bool>();
  }
}

void ChatSession::add_message(ordered_json message) { messages_.push_back(std::move(message)); }

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

void ChatSession::prefill(const std::vector<int32_t>& prompt, ChatStats* stats) {
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
  const std::vector<int32_t> rest(prompt.begin() + std::ptrdiff_t(common), prompt.end());
  const auto t0 = std::chrono::steady_clock::now();
  decoder_.eval_tokens(rest, gemma4::Outputs::kLast, &out);
  stats->prompt_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  cached_ = prompt;
  stats->prompt_tokens = int(prompt.size());
  stats->prompt_evaluated = int(rest.size());
  last_logits_ = std::move(out.logits);
}

ChatReply ChatSession::send(const std::string& user_text,
                            const std::function<void(const OutputEvent&)>& on_event,
                            const std::atomic<bool>* cancel) {
  add_message(ordered_json{{"role", "user"}, {"content", user_text}});
  return reply(on_event, cancel);
}

ChatReply ChatSession::reply(const std::function<void(const OutputEvent&)>& on_event,
                             const std::atomic<bool>* cancel) {
  ChatReply r;
  const std::string prompt_text = render_prompt();
  EncodeOptions eo;
  eo.add_bos = false;  // the template writes <bos> itself
  eo.parse_special = true;
  const std::vector<int32_t> prompt = tokenizer_.encode(prompt_text, eo);
  prefill(prompt, &r.stats);

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
        case OutputEventType::kContent: r.content += e.text; break;
        case OutputEventType::kThinking: r.thinking += e.text; break;
        case OutputEventType::kToolCall: r.tool_calls.push_back(e.tool_call); break;
        case OutputEventType::kError: r.errors.push_back({e.text, e.error}); break;
      }
      if (on_event) on_event(e);
    }
    events.clear();
  };

  std::vector<int32_t> history = prompt;
  std::vector<float> logits = std::move(last_logits_);
  gemma4::Output out;
  const auto t0 = std::chrono::steady_clock::now();
  r.finish_reason = "length";
  for (int i = 0; i < options_.max_tokens; ++i) {
    if (cancel && cancel->load()) {
      r.finish_reason = "cancelled";
      break;
    }
    const int32_t tok = sampler.sample(logits, history);
    if (std::find(model_.eog_tokens.begin(), model_.eog_tokens.end(), tok) !=
        model_.eog_tokens.end()) {
      r.finish_reason = "stop";
      break;
    }
    history.push_back(tok);
    ++r.stats.generated_tokens;
    parser.feed(stream.push(tok), events);
    dispatch();
    if (decoder_.n_past() >= options_.n_ctx) break;
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
