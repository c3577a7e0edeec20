// Continuous batching of independent generations (the server's engine). N slots, each with its own
// KV cache; a worker thread admits queued requests into free slots (prefilling their prompt,
// reusing the longest cached prefix among the free slots), then advances every active slot by one
// token per step with a single batched weight pass (gemma4::BatchDecoder). A slot's output never
// depends on what else is in the batch. Requests beyond the slots wait in a bounded queue; a
// cancelled or timed-out request leaves its slot at the next step.
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
#include "runtime/json_constraint.h"
#include "runtime/multimodal.h"
#include "runtime/sampler.h"
#include "tokenizer/tokenizer.h"

namespace ug {

struct GenerationRequest {
  AssembledPrompt prompt;
  SamplerParams sampling;
  int max_tokens = 1024;
  // Constrained decoding: only tokens that keep the output a valid JSON prefix of this kind.
  std::optional<JsonTop> json;
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
  bool admit(Slot& slot, std::shared_ptr<Generation> job);
  void prefill(Slot& slot);
  // Picks the next token of `slot` from `logits`; finishes the slot's job when it ends.
  void advance(Slot& slot, const float* logits);
  void finish(Slot& slot, const std::string& reason, const std::string& error = {});
  int32_t choose_constrained(Slot& slot, const float* logits);
  const std::vector<std::string>& pieces();

  const gemma4::Model& model_;
  const Tokenizer& tokenizer_;
  ThreadPool& pool_;
  SchedulerOptions options_;
  gemma4::BatchDecoder batch_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::string> pieces_;  // token texts for constrained decoding, built on first use

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Generation>> queue_;
  bool stop_ = false;
  SchedulerMetrics metrics_;
  std::thread worker_;
};

}  // namespace ug
