// A conversation with the model: renders the chat template, reuses the KV cache for the part of the
// prompt that did not change, samples the reply token by token and splits it into content,
// thinking and tool calls as it streams.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "chat/output_parser.h"
#include "model/gemma4/decoder.h"
#include "runtime/multimodal.h"
#include "runtime/sampler.h"
#include "runtime/speculative.h"
#include "tokenizer/tokenizer.h"

namespace ug {

struct ChatOptions {
  SpeculativeOptions speculative;  // used when a drafter is set
  int n_ctx = 4096;
  int n_ubatch = 512;
  TensorType cache_type = TensorType::F16;
  bool commit_kv = false;                       // take the whole KV cache's memory at start-up
  std::optional<TensorType> global_cache_type;  // full-attention layers; unset: cache_type
  SamplerParams sampling;
  int max_tokens = 1024;  // per reply; the context length also bounds it
  bool enable_thinking = false;
  std::string chat_template;  // empty: the model's, else the official Gemma 4 template
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();  // tool declarations
};

struct ChatStats {
  int prompt_tokens = 0;     // tokens of the rendered prompt
  int prompt_evaluated = 0;  // of which had to be computed (the rest came from the KV cache)
  int generated_tokens = 0;
  double prompt_seconds = 0;
  double generate_seconds = 0;
};

struct ChatReply {
  std::string content;
  std::string thinking;
  std::vector<ParsedToolCall> tool_calls;
  std::vector<OutputError> errors;
  std::string finish_reason;  // "stop", "length", "tool_calls", "cancelled"
  ChatStats stats;
};

class ChatSession {
 public:
  // `model` and `tokenizer` must outlive the session.
  ChatSession(const gemma4::Model& model, const Tokenizer& tokenizer, ThreadPool& pool,
              ChatOptions options);

  ChatOptions& options() { return options_; }
  // Prompt-processing progress (positions done, total), e.g. for a progress bar.
  void set_progress(std::function<void(int, int)> progress) {
    decoder_.set_progress(std::move(progress));
  }
  const nlohmann::ordered_json& messages() const { return messages_; }
  void set_system(const std::string& text);  // replaces (or removes, when empty) the system turn
  void reset();                              // forgets the conversation, keeps the system turn
  // Conversation JSON: {"messages": [...], "enable_thinking": bool}. Media parts of messages keep
  // the file's absolute path ("source"), the options that shaped the embedding and a content hash;
  // load() validates the JSON and decodes and embeds those files again (needs the projector), and
  // refuses files that are missing or whose content changed. On error nothing is replaced.
  nlohmann::ordered_json save() const;
  void load(const nlohmann::ordered_json& conversation);

  // Appends a message as is (role user/system/tool/assistant...).
  void add_message(nlohmann::ordered_json message);
  // Renders the conversation for the next reply (with the generation prompt).
  std::string render_prompt() const;

  // Generates the assistant reply to the conversation so far and appends it. `on_event` receives
  // streamed content/thinking deltas and completed tool calls; `cancel` (optional) stops it.
  ChatReply reply(const std::function<void(const OutputEvent&)>& on_event,
                  const std::atomic<bool>* cancel = nullptr);

  // Multimodal input. `projector` (may be null; must outlive the session) enables attach().
  void set_projector(const gemma4::Projector* projector, MediaOptions media_options = {});
  // Decodes and embeds `path` now (so errors surface here) and attaches it to the next send(),
  // whose user message then has content parts: the media in attach order, then the text.
  // The returned embedding's notices tell what the user should know (e.g. audio split into clips).
  const MediaEmbedding& attach(MediaKind kind, const std::string& path);
  size_t pending_media() const { return pending_.size(); }

  // Convenience: add a user message, then reply().
  ChatReply send(const std::string& user_text,
                 const std::function<void(const OutputEvent&)>& on_event,
                 const std::atomic<bool>* cancel = nullptr);

  // MTP speculative decoding with `drafter` (null: off); it must outlive the session.
  void set_drafter(gemma4::Drafter* drafter) { drafter_ = drafter; }
  // Acceptance and timing of the last reply's speculative rounds (empty without a drafter).
  const SpeculativeStats& speculative_stats() const { return spec_stats_; }

 private:
  void prefill(const AssembledPrompt& prompt, ChatStats* stats);
  AssembledPrompt assemble(const std::string& prompt_text) const;

  const gemma4::Model& model_;
  const Tokenizer& tokenizer_;
  ChatOptions options_;
  gemma4::Decoder decoder_;
  std::vector<int32_t> cached_;     // tokens whose K/V are in the decoder's cache, in order
  std::vector<float> last_logits_;  // distribution after the prefilled prompt
  std::vector<float> last_hidden_;  // post-final-norm hidden of the last prompt position
  gemma4::Drafter* drafter_ = nullptr;
  SpeculativeStats spec_stats_;
  nlohmann::ordered_json messages_ = nlohmann::ordered_json::array();
  ChatTemplate template_;
  ThreadPool& pool_;
  const gemma4::Projector* projector_ = nullptr;
  MediaOptions media_options_;
  std::vector<std::shared_ptr<const MediaEmbedding>> media_;  // placeholders of messages_, in order
  std::vector<std::shared_ptr<const MediaEmbedding>> pending_;  // for the next send()
};

}  // namespace ug
