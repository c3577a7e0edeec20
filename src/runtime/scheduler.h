// Continuous batching of independent generations (the server's engine). N slots, each with its own
// KV cache; a worker thread admits queued requests into free slots (reusing the longest cached
// prefix among the free slots), and each step then evaluates at most one ubatch of new prompts
// (chunked prefill, so a long prompt does not stall the sequences already generating) and advances
// every generating slot by one token with a single batched weight pass (gemma4::BatchDecoder). With
// an MTP drafter and a single generating slot, that slot runs a speculative round instead (draft k,
// verify k + 1 positions); with several, the batched plain step. A slot's output never depends on
// what else is in the batch. Requests beyond the slots wait in a bounded queue; a cancelled or
// timed-out request leaves its slot at the next step.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "model/gemma4/decoder.h"
#include "model/gemma4/drafter.h"
#include "runtime/json_constraint.h"
#include "runtime/multimodal.h"
#include "runtime/sampler.h"
#include "runtime/speculative.h"
#include "tokenizer/tokenizer.h"

namespace ug {

struct GenerationRequest {
  AssembledPrompt prompt;
  SamplerParams sampling;
  int max_tokens = 1024;
  // Constrained decoding: only tokens that keep the output a valid JSON prefix of this kind.
  std::optional<JsonTop> json;
  // Schema-constrained decoding; replaces `json` when set.
  std::shared_ptr<const JsonSchema> json_schema;
  // The output must begin with one of these texts (special tokens as written, e.g. a forced tool
  // call "<|tool_call>call:get_weather{"); generation is free after it.
  std::vector<std::string> forced_prefixes;
  // Tokens never generated (e.g. <|tool_call> with tool_choice none).
  std::vector<int32_t> banned_tokens;
  // Zero: no limit.
  std::chrono::milliseconds timeout{0};
  // Never end at an end-of-generation token (benchmarks: a fixed number of tokens).
  bool ignore_eos = false;
};

struct GenerationResult {
  // "stop" (end-of-generation token), "length" (max_tokens or context), "cancelled", "timeout",
  // "error".
  std::string finish_reason;
  std::string error;  // for "error"
  int prompt_tokens = 0;
  int prompt_cached = 0;  // prompt positions reused from a previous request's KV
  int generated_tokens = 0;
  double queue_seconds = 0;
  double prompt_seconds = 0;
  double first_token_seconds = 0;  // submit to first token
  double decode_seconds = 0;
};

// Shared between the submitter and the worker. The worker appends tokens; the submitter drains
// them with wait(). cancel() may be called from any thread.
class Generation {
 public:
  // Moves new tokens into `out` (appending). Returns false once the generation is over and every
  // token has been drained; waits up to `timeout` for something to happen.
  bool wait(std::vector<int32_t>* out, std::chrono::milliseconds timeout);
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }
  // Valid once wait() returned false.
  GenerationResult result() const;

 private:
  friend class Scheduler;
  void push(int32_t token);
  void finish(GenerationResult result);

  GenerationRequest request_;
  std::chrono::steady_clock::time_point submitted_;
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int32_t> tokens_;
  bool done_ = false;
  GenerationResult result_;
};

struct SchedulerOptions {
  int n_parallel = 1;
  int max_queue = 64;  // waiting requests beyond the slots
  int n_ctx = 4096;    // per slot
  int n_ubatch = 512;
  TensorType cache_type = TensorType::F16;
  // Prompts are evaluated one ubatch per scheduler step, between decode steps; false: a new
  // request's whole prompt at admission (running sequences wait for it).
  bool chunked_prefill = true;
  // MTP drafter (may be null; must outlive the scheduler): speculative rounds while one sequence
  // generates alone. Sequences under a JSON or prefix constraint decode plainly.
  gemma4::Drafter* drafter = nullptr;
  SpeculativeOptions speculative;
};

// Counters for /metrics (monotonic unless noted).
struct SchedulerMetrics {
  uint64_t requests_finished = 0;
  uint64_t requests_cancelled = 0;
  uint64_t prompt_tokens = 0;     // rendered prompt positions
  uint64_t prompt_evaluated = 0;  // of which computed (the rest came from the prompt cache)
  uint64_t generated_tokens = 0;
  double prompt_seconds = 0;
  double decode_seconds = 0;  // wall time of batched decode steps
  uint64_t decode_steps = 0;
  uint64_t prompt_chunks = 0;         // prompt evaluations (a chunked prompt counts each chunk)
  uint64_t spec_rounds = 0;           // speculative rounds (MTP drafter)
  uint64_t spec_drafted = 0;          // draft tokens proposed
  uint64_t spec_accepted = 0;         // of which the target accepted
  std::vector<double> ttft_bounds;    // histogram upper bounds (seconds)
  std::vector<uint64_t> ttft_counts;  // cumulative counts per bound, then +Inf
  double ttft_sum = 0;
  int queue_depth = 0;            // gauge
  int active_sequences = 0;       // gauge
  int64_t kv_positions_used = 0;  // gauge: positions held in slot caches
  int64_t kv_positions_total = 0;
  uint64_t kv_bytes_reserved = 0;
};

class Scheduler {
 public:
  // `model`, `tokenizer` and `pool` must outlive the scheduler; the pool is used by the worker
  // thread only.
  Scheduler(const gemma4::Model& model, const Tokenizer& tokenizer, ThreadPool& pool,
            SchedulerOptions options);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  const SchedulerOptions& options() const { return options_; }
  // Queues a request. Returns null when the queue is full. Throws ug::Error when the prompt cannot
  // fit a slot's context.
  std::shared_ptr<Generation> submit(GenerationRequest request);
  SchedulerMetrics metrics() const;

 private:
  struct Slot;
  void run();
  // Sets up a newly admitted slot: reuses its cached prefix and keeps the rest of the prompt.
  void start_prefill(Slot& slot);
  // Evaluates the slot's next prompt chunk if it fits `budget` positions (or `force`); returns
  // the positions evaluated. The last chunk picks the first token.
  int prefill_step(Slot& slot, int budget, bool force);
  void speculative_step(Slot& slot);
  bool finish_if_cancelled_or_late(Slot& slot);
  // Picks the next token of `slot` from `logits`; finishes the slot's job when it ends.
  void advance(Slot& slot, const float* logits);
  // Hands `tok` to the job; false when the job ended (end of generation, limit, constraint done).
  bool accept_token(Slot& slot, int32_t tok);
  void finish(Slot& slot, const std::string& reason, const std::string& error = {});
  // Slots holding a job (under mu_: slot jobs change under it).
  int busy_slots() const;
  int32_t choose_constrained(Slot& slot, const float* logits);
  const std::vector<std::string>& pieces();
  const std::vector<std::string>& special_pieces();

  const gemma4::Model& model_;
  const Tokenizer& tokenizer_;
  SchedulerOptions options_;
  gemma4::BatchDecoder batch_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::string> pieces_;  // token texts for constrained decoding, built on first use
  std::vector<std::string> special_pieces_;  // the same with special tokens written out

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Generation>> queue_;
  bool stop_ = false;
  SchedulerMetrics metrics_;
  std::thread worker_;
};

}  // namespace ug
