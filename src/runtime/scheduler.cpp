#include "runtime/scheduler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>

#include "util/error.h"

namespace ug {

using Clock = std::chrono::steady_clock;

namespace {
double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
// Candidates checked against the JSON validator before falling back to the whole vocabulary.
constexpr int kConstrainedCandidates = 256;
// How close to max_tokens (in tokens beyond the shortest way to close the JSON document) the
// constrained choice starts checking that each candidate still leaves room to close it.
constexpr int kClosingMargin = 64;
// At most this many possible next bytes: also filter candidates on their second byte.
constexpr int kSecondByteFilter = 16;
}  // namespace

// ------------------------------------------------------------------ Generation

bool Generation::wait(std::vector<int32_t>* out, std::chrono::milliseconds timeout) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, timeout, [&] { return !tokens_.empty() || done_; });
  if (!tokens_.empty()) {
    out->insert(out->end(), tokens_.begin(), tokens_.end());
    tokens_.clear();
    return true;
  }
  return !done_;
}

GenerationResult Generation::result() const {
  std::lock_guard lk(mu_);
  return result_;
}

void Generation::push(int32_t token) {
  {
    std::lock_guard lk(mu_);
    tokens_.push_back(token);
  }
  cv_.notify_all();
}

void Generation::finish(GenerationResult result) {
  {
    std::lock_guard lk(mu_);
    result_ = std::move(result);
    done_ = true;
  }
  cv_.notify_all();
}

// ------------------------------------------------------------------ Scheduler

struct Scheduler::Slot {
  std::unique_ptr<gemma4::Decoder> decoder;
  std::vector<int32_t> cached;  // cache keys of the positions held in the decoder's KV cache
  uint64_t last_used = 0;
  // The job in this slot (null: free).
  std::shared_ptr<Generation> job;
  std::unique_ptr<Sampler> sampler;
  std::optional<JsonValidator> json;
  // Forced output prefix (tool_choice): the text generated so far while it is active.
  bool prefix_active = false;
  std::string prefix_text;
  // Chunked prefill: the prompt positions not yet in the cache, and how far they are done.
  bool prefilling = false;
  uint64_t admitted = 0;
  gemma4::Input rest;
  int rest_done = 0;
  size_t rest_embd_row = 0;
  size_t prompt_common = 0;
  // Speculative decoding: the generator (per job), whether its state matches the slot's, and the
  // target hidden that produced `pending` (empty when unknown: the next round is plain).
  std::unique_ptr<SpeculativeGenerator> spec;
  bool spec_synced = false;
  std::vector<float> hidden;
  std::vector<int32_t> history;
  int32_t pending = -1;  // sampled, to be fed at the next step
  int generated = 0;
  Clock::time_point deadline;
  bool has_deadline = false;
  Clock::time_point decode_start;
  GenerationResult result;
};

Scheduler::Scheduler(const gemma4::Model& model, const Tokenizer& tokenizer, ThreadPool& pool,
                     SchedulerOptions options)
    : model_(model), tokenizer_(tokenizer), options_(options), batch_(model, pool) {
  if (options_.n_parallel < 1) throw Error("parallel sequences must be >= 1");
  if (options_.max_queue < 0) throw Error("queue size must be >= 0");
  if (options_.drafter) validate(options_.speculative);
  for (int i = 0; i < options_.n_parallel; ++i) {
    auto slot = std::make_unique<Slot>();
    slot->decoder = std::make_unique<gemma4::Decoder>(
        model, gemma4::DecoderOptions{options_.n_ctx, options_.n_ubatch, options_.cache_type},
        pool);
    slots_.push_back(std::move(slot));
  }
  metrics_.ttft_bounds = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  metrics_.ttft_counts.assign(metrics_.ttft_bounds.size() + 1, 0);
  metrics_.kv_positions_total = int64_t(options_.n_ctx) * options_.n_parallel;
  for (const auto& s : slots_) metrics_.kv_bytes_reserved += s->decoder->cache().reserved_bytes();
  worker_ = std::thread([this] { run(); });
}

Scheduler::~Scheduler() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

std::shared_ptr<Generation> Scheduler::submit(GenerationRequest request) {
  validate(request.sampling);
  const size_t n = request.prompt.cache_keys.size();
  if (n == 0) throw Error("the prompt is empty");
  if (int64_t(n) >= int64_t(options_.n_ctx)) {
    throw Error("the prompt has " + std::to_string(n) +
                " tokens, which does not fit the context length " + std::to_string(options_.n_ctx));
  }
  if (request.max_tokens < 0) throw Error("max_tokens must be >= 0");
  auto job = std::make_shared<Generation>();
  job->request_ = std::move(request);
  job->submitted_ = Clock::now();
  {
    std::lock_guard lk(mu_);
    if (busy_slots() >= int(slots_.size()) && int(queue_.size()) >= options_.max_queue) {
      return nullptr;
    }
    queue_.push_back(job);
    metrics_.queue_depth = int(queue_.size());
  }
  cv_.notify_all();
  return job;
}

SchedulerMetrics Scheduler::metrics() const {
  std::lock_guard lk(mu_);
  return metrics_;
}

const std::vector<std::string>& Scheduler::pieces() {
  if (pieces_.empty()) {
    const int32_t V = std::min<int32_t>(tokenizer_.vocab_size(), model_.config.n_vocab);
    pieces_.resize(size_t(model_.config.n_vocab));
    for (int32_t id = 0; id < V; ++id) pieces_[size_t(id)] = tokenizer_.token_piece(id, false);
  }
  return pieces_;
}

const std::vector<std::string>& Scheduler::special_pieces() {
  if (special_pieces_.empty()) {
    const int32_t V = std::min<int32_t>(tokenizer_.vocab_size(), model_.config.n_vocab);
    special_pieces_.resize(size_t(model_.config.n_vocab));
    for (int32_t id = 0; id < V; ++id)
      special_pieces_[size_t(id)] = tokenizer_.token_piece(id, true);
  }
  return special_pieces_;
}

void Scheduler::run() {
  uint64_t use_counter = 0;
  for (;;) {
    std::vector<Slot*> admitted;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty() || busy_slots() > 0; });
      if (stop_) break;
      while (!queue_.empty()) {
        std::shared_ptr<Generation> job = queue_.front();
        if (job->cancelled()) {
          queue_.pop_front();
          GenerationResult r;
          r.finish_reason = "cancelled";
          r.prompt_tokens = int(job->request_.prompt.cache_keys.size());
          ++metrics_.requests_cancelled;
          job->finish(r);
          continue;
        }
        // The free slot whose cache shares the longest prefix with the prompt (prompt cache);
        // among equals the least recently used one.
        const auto& keys = job->request_.prompt.cache_keys;
        Slot* best = nullptr;
        size_t best_common = 0;
        for (const auto& s : slots_) {
          if (s->job) continue;
          size_t common = 0;
          while (common < s->cached.size() && common < keys.size() &&
                 s->cached[common] == keys[common]) {
            ++common;
          }
          if (!best || common > best_common ||
              (common == best_common && s->last_used < best->last_used)) {
            best = s.get();
            best_common = common;
          }
        }
        if (!best) break;
        queue_.pop_front();
        best->job = std::move(job);
        best->last_used = ++use_counter;
        best->admitted = use_counter;
        admitted.push_back(best);
      }
      metrics_.queue_depth = int(queue_.size());
    }

    for (Slot* s : admitted) start_prefill(*s);

    // Prompt work: at most one ubatch per step (oldest request first), so that the sequences
    // already generating wait for one chunk, not for a whole prompt.
    std::vector<Slot*> prefilling;
    for (const auto& s : slots_) {
      if (s->job && s->prefilling) prefilling.push_back(s.get());
    }
    std::sort(prefilling.begin(), prefilling.end(),
              [](const Slot* a, const Slot* b) { return a->admitted < b->admitted; });
    int budget = options_.chunked_prefill ? options_.n_ubatch : std::numeric_limits<int>::max();
    bool first = true;
    for (Slot* s : prefilling) {
      const int done = prefill_step(*s, budget, first);
      if (done == 0 && !first) break;
      first = false;
      budget -= done;
      if (budget <= 0) break;
    }

    std::vector<Slot*> batch;
    std::vector<gemma4::KvCache*> caches;
    std::vector<int32_t> tokens;
    for (const auto& s : slots_) {
      if (s->job && s->pending >= 0) {
        batch.push_back(s.get());
        caches.push_back(&s->decoder->cache());
        tokens.push_back(s->pending);
      }
    }
    if (batch.size() == 1 && options_.drafter && !batch[0]->json && !batch[0]->prefix_active) {
      speculative_step(*batch[0]);
    } else if (!batch.empty()) {
      std::vector<float> logits;
      const auto t0 = Clock::now();
      try {
        batch_.step(caches, tokens, &logits);
      } catch (const std::exception& e) {
        for (Slot* s : batch) {
          s->decoder->cache().clear();
          s->cached.clear();
          finish(*s, "error", e.what());
        }
        batch.clear();
      }
      const double dt = seconds_between(t0, Clock::now());
      for (size_t i = 0; i < batch.size(); ++i) {
        Slot& s = *batch[i];
        s.cached.push_back(s.pending);
        s.pending = -1;
        s.spec_synced = false;  // the generator did not see this step
        s.hidden.clear();
        advance(s, logits.data() + i * size_t(model_.config.n_vocab));
      }
      std::lock_guard lk(mu_);
      metrics_.decode_seconds += dt;
      ++metrics_.decode_steps;
    }
    std::lock_guard lk(mu_);
    int64_t used = 0;
    for (const auto& s : slots_) used += s->decoder->n_past();
    metrics_.active_sequences = busy_slots();
    metrics_.kv_positions_used = used;
  }
  // Shutting down: whatever is left ends as cancelled.
  for (const auto& s : slots_) {
    if (s->job) finish(*s, "cancelled");
  }
  std::lock_guard lk(mu_);
  for (auto& job : queue_) {
    GenerationResult r;
    r.finish_reason = "cancelled";
    job->finish(r);
  }
  queue_.clear();
}

void Scheduler::start_prefill(Slot& slot) {
  Generation& job = *slot.job;
  const GenerationRequest& req = job.request_;
  const AssembledPrompt& prompt = req.prompt;
  const auto start = Clock::now();
  slot.result = GenerationResult();
  slot.result.queue_seconds = seconds_between(job.submitted_, start);
  slot.has_deadline = req.timeout.count() > 0;
  slot.deadline = job.submitted_ + req.timeout;
  slot.generated = 0;
  slot.pending = -1;
  slot.json.reset();
  if (req.json_schema) {
    slot.json.emplace(req.json_schema);
  } else if (req.json) {
    slot.json.emplace(*req.json);
  }
  slot.prefix_active = !req.forced_prefixes.empty();
  slot.prefix_text.clear();
  slot.spec.reset();
  slot.spec_synced = false;
  slot.hidden.clear();
  slot.prefilling = false;
  if (job.cancelled()) {
    finish(slot, "cancelled");
    return;
  }
  gemma4::Decoder& decoder = *slot.decoder;
  const std::vector<int32_t>& keys = prompt.cache_keys;
  // Reuse the cached prefix; at least the last prompt position is recomputed for its logits, and
  // a soft-token run (image/audio block) is never split.
  size_t common = 0;
  while (common < slot.cached.size() && common < keys.size() &&
         slot.cached[common] == keys[common]) {
    ++common;
  }
  if (common == keys.size()) --common;
  const auto& in = prompt.input;
  while (common > 0 && in.tokens[common] < 0 && in.tokens[common - 1] < 0) --common;
  if (common < size_t(decoder.n_past())) {
    const int rollback = decoder.n_past() - int(common);
    if (rollback <= decoder.cache().rollback_limit()) {
      decoder.cache().truncate(int(common));
    } else {
      decoder.cache().clear();
      common = 0;
    }
  }
  slot.cached.resize(std::min(slot.cached.size(), common));
  gemma4::Input& rest = slot.rest;
  const auto split = std::ptrdiff_t(common);
  rest.tokens.assign(in.tokens.begin() + split, in.tokens.end());
  const auto skipped_rows = std::count(in.tokens.begin(), in.tokens.begin() + split, -1);
  rest.embeddings.assign(in.embeddings.begin() + skipped_rows * model_.config.n_embd,
                         in.embeddings.end());
  rest.block.clear();
  if (!in.block.empty()) rest.block.assign(in.block.begin() + split, in.block.end());
  slot.rest_done = 0;
  slot.rest_embd_row = 0;
  slot.prompt_common = common;
  slot.prefilling = true;
  slot.result.prompt_tokens = int(keys.size());
  slot.result.prompt_cached = int(common);
  std::lock_guard lk(mu_);
  metrics_.prompt_tokens += common;  // the evaluated rest is counted chunk by chunk
}

int Scheduler::prefill_step(Slot& slot, int budget, bool force) {
  Generation& job = *slot.job;
  const GenerationRequest& req = job.request_;
  if (job.cancelled() || (slot.has_deadline && Clock::now() >= slot.deadline)) {
    slot.prefilling = false;
    finish(slot, job.cancelled() ? "cancelled" : "timeout");
    return 0;
  }
  const gemma4::Input& rest = slot.rest;
  const int n = int(rest.tokens.size());
  const int begin = slot.rest_done;
  // The chunk Decoder::eval would make of the whole rest (same boundaries, so the same numbers):
  // n_ubatch positions, ending before a bidirectional block that would not fit.
  int end = n;
  if (options_.chunked_prefill) {
    end = std::min(n, begin + options_.n_ubatch);
    if (!rest.block.empty() && end < n && rest.block[size_t(end)] >= 0 &&
        rest.block[size_t(end)] == rest.block[size_t(end - 1)]) {
      int block_start = end - 1;
      while (block_start > begin &&
             rest.block[size_t(block_start - 1)] == rest.block[size_t(end)]) {
        --block_start;
      }
      if (block_start > begin) end = block_start;  // else eval() reports the oversized block
    }
  }
  if (end - begin > budget && !force) return 0;
  gemma4::Input chunk;
  chunk.tokens.assign(rest.tokens.begin() + begin, rest.tokens.begin() + end);
  const size_t rows = size_t(std::count(chunk.tokens.begin(), chunk.tokens.end(), -1));
  const size_t E = size_t(model_.config.n_embd);
  chunk.embeddings.assign(
      rest.embeddings.begin() + std::ptrdiff_t(slot.rest_embd_row * E),
      rest.embeddings.begin() + std::ptrdiff_t((slot.rest_embd_row + rows) * E));
  if (!rest.block.empty()) chunk.block.assign(rest.block.begin() + begin, rest.block.begin() + end);
  const bool last = end == n;
  gemma4::Decoder& decoder = *slot.decoder;
  gemma4::Output out;
  const auto t0 = Clock::now();
  try {
    decoder.eval(chunk, last ? gemma4::Outputs::kLast : gemma4::Outputs::kNone, &out);
  } catch (const std::exception& e) {
    decoder.cache().clear();
    slot.cached.clear();
    slot.prefilling = false;
    finish(slot, "error", e.what());
    return end - begin;
  }
  const double dt = seconds_between(t0, Clock::now());
  slot.rest_done = end;
  slot.rest_embd_row += rows;
  const std::vector<int32_t>& keys = req.prompt.cache_keys;
  slot.cached.assign(keys.begin(), keys.begin() + std::ptrdiff_t(slot.prompt_common + size_t(end)));
  slot.result.prompt_seconds += dt;
  {
    std::lock_guard lk(mu_);
    metrics_.prompt_evaluated += size_t(end - begin);
    metrics_.prompt_seconds += dt;
    metrics_.prompt_tokens += size_t(end - begin);
    ++metrics_.prompt_chunks;
  }
  if (!last) return end - begin;

  slot.prefilling = false;
  slot.rest = gemma4::Input();
  std::vector<int32_t> suppressed(model_.suppress_tokens.begin(), model_.suppress_tokens.end());
  if (req.ignore_eos)
    suppressed.insert(suppressed.end(), model_.eog_tokens.begin(), model_.eog_tokens.end());
  suppressed.insert(suppressed.end(), req.banned_tokens.begin(), req.banned_tokens.end());
  try {
    slot.sampler = std::make_unique<Sampler>(req.sampling, std::move(suppressed));
  } catch (const std::exception& e) {
    finish(slot, "error", e.what());
    return end - begin;
  }
  slot.history = req.prompt.ids;
  if (options_.drafter && size_t(out.n_rows) * size_t(model_.config.n_embd) == out.hidden.size() &&
      out.n_rows == 1) {
    slot.hidden = out.hidden;
  }
  slot.decode_start = Clock::now();
  if (req.max_tokens == 0) {
    finish(slot, "length");
    return end - begin;
  }
  advance(slot, out.logits.data());
  return end - begin;
}

// A slot whose client went away or whose request ran past its deadline ends here, before more work.
bool Scheduler::finish_if_cancelled_or_late(Slot& slot) {
  if (slot.job->cancelled()) {
    finish(slot, "cancelled");
    return true;
  }
  if (slot.has_deadline && Clock::now() >= slot.deadline) {
    finish(slot, "timeout");
    return true;
  }
  return false;
}

void Scheduler::speculative_step(Slot& slot) {
  if (finish_if_cancelled_or_late(slot)) return;
  Generation& job = *slot.job;
  SpeculativeRound r;
  const auto t0 = Clock::now();
  try {
    if (!slot.spec) {
      slot.spec = std::make_unique<SpeculativeGenerator>(*slot.decoder, options_.drafter,
                                                         *slot.sampler, options_.speculative);
    }
    if (!slot.spec_synced) {
      slot.spec->begin(slot.history, slot.hidden);
      slot.spec_synced = true;
    }
    r = slot.spec->round(-1, job.request_.max_tokens - slot.generated);
  } catch (const std::exception& e) {
    slot.decoder->cache().clear();
    slot.cached.clear();
    finish(slot, "error", e.what());
    return;
  }
  const double dt = seconds_between(t0, Clock::now());
  // The cache now holds the input and the accepted drafts.
  slot.cached.push_back(r.input);
  slot.cached.insert(slot.cached.end(), r.draft.begin(), r.draft.begin() + r.n_accepted);
  slot.pending = -1;
  slot.hidden.clear();
  {
    std::lock_guard lk(mu_);
    metrics_.decode_seconds += dt;
    ++metrics_.decode_steps;
    ++metrics_.spec_rounds;
    metrics_.spec_drafted += r.draft.size();
    metrics_.spec_accepted += uint64_t(r.n_accepted);
  }
  for (int32_t tok : r.emitted) {
    if (!accept_token(slot, tok)) return;
  }
}

int32_t Scheduler::choose_constrained(Slot& slot, const float* logits) {
  const int32_t eog = model_.eog_tokens.empty() ? tokenizer_.eos_id() : model_.eog_tokens[0];
  const bool prefix = slot.prefix_active;
  if (!prefix && slot.json->complete()) return eog;
  const std::vector<std::string>& text = prefix ? special_pieces() : pieces();
  const int32_t V = model_.config.n_vocab;
  std::vector<float> masked(static_cast<size_t>(V), -std::numeric_limits<float>::infinity());
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  const int32_t k = std::min<int32_t>(kConstrainedCandidates, V);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const std::vector<std::string>& prefixes = slot.job->request_.forced_prefixes;
  // JSON: bytes that may come next (most tokens fail on their first byte; this is cheap to test).
  std::array<bool, 256> first_ok{};
  // Where few bytes may come next (structure, not string content), also the byte after each:
  // rules out the many " word" tokens where only whitespace then '"' or '}' may follow.
  std::vector<std::array<bool, 256>> second_ok;
  // Near the token limit, only tokens after which the document can still be closed in time (one
  // token per byte at worst: the vocabulary has every byte).
  const int remaining = slot.job->request_.max_tokens - slot.generated;
  bool near_limit = false;
  size_t closing_now = 0;
  if (!prefix) {
    int n_first = 0;
    for (int c = 0; c < 256; ++c) {
      first_ok[size_t(c)] = slot.json->accepts(std::string(1, char(c)));
      n_first += first_ok[size_t(c)] ? 1 : 0;
    }
    if (n_first <= kSecondByteFilter) {
      second_ok.assign(256, {});
      for (int c = 0; c < 256; ++c) {
        if (!first_ok[size_t(c)]) continue;
        JsonValidator after = *slot.json;
        after.feed(std::string(1, char(c)));
        for (int d = 0; d < 256; ++d) {
          second_ok[size_t(c)][size_t(d)] = after.accepts(std::string(1, char(d)));
        }
      }
    }
    closing_now = slot.json->shortest_completion().size();
    near_limit = remaining <= int(closing_now) + kClosingMargin;
  }
  auto allowed = [&](int32_t id) {
    const std::string& piece = text[size_t(id)];
    if (piece.empty()) return false;
    if (prefix) {
      const std::string t = slot.prefix_text + piece;
      return std::any_of(prefixes.begin(), prefixes.end(), [&](const std::string& p) {
        return p.compare(0, std::min(p.size(), t.size()), t, 0, std::min(p.size(), t.size())) == 0;
      });
    }
    const auto b0 = static_cast<unsigned char>(piece[0]);
    if (!first_ok[b0]) return false;
    if (!second_ok.empty() && piece.size() > 1 &&
        !second_ok[b0][static_cast<unsigned char>(piece[1])]) {
      return false;
    }
    if (!near_limit) return slot.json->accepts(piece);
    JsonValidator after = *slot.json;
    if (!after.feed(piece)) return false;
    if (after.complete()) return true;
    // Room left to close after this token; when there is not (max_tokens below the schema's
    // minimum), at least head towards the end.
    const size_t need = after.shortest_completion().size();
    return int(need) <= remaining - 1 || need < closing_now;
  };
  bool any = false;
  for (int32_t i = 0; i < k; ++i) {
    const int32_t id = order[size_t(i)];
    if (allowed(id)) {
      masked[size_t(id)] = logits[id];
      any = true;
    }
  }
  if (!any) {
    for (int32_t id = 0; id < V; ++id) {
      if (allowed(id)) {
        masked[size_t(id)] = logits[id];
        any = true;
      }
    }
  }
  // A document that could end here (a top-level number) may also end.
  if (!prefix && slot.json->can_end()) {
    for (int32_t e : model_.eog_tokens) {
      if (e >= 0 && e < V) masked[size_t(e)] = logits[e];
    }
    any = true;
  }
  if (!any) return eog;  // cannot happen with a byte-complete vocabulary
  return slot.sampler->sample(masked, slot.history);
}

void Scheduler::advance(Slot& slot, const float* logits) {
  if (finish_if_cancelled_or_late(slot)) return;
  int32_t tok;
  try {
    tok = slot.json || slot.prefix_active
              ? choose_constrained(slot, logits)
              : slot.sampler->sample(std::span<const float>(logits, size_t(model_.config.n_vocab)),
                                     slot.history);
  } catch (const std::exception& e) {
    finish(slot, "error", e.what());
    return;
  }
  accept_token(slot, tok);
}

bool Scheduler::accept_token(Slot& slot, int32_t tok) {
  Generation& job = *slot.job;
  if (std::find(model_.eog_tokens.begin(), model_.eog_tokens.end(), tok) !=
      model_.eog_tokens.end()) {
    finish(slot, "stop");
    return false;
  }
  if (slot.generated == 0) {
    slot.result.first_token_seconds = seconds_between(job.submitted_, Clock::now());
  }
  if (slot.prefix_active) {
    slot.prefix_text += special_pieces()[size_t(tok)];
    for (const std::string& p : job.request_.forced_prefixes) {
      if (slot.prefix_text.size() >= p.size() && slot.prefix_text.compare(0, p.size(), p) == 0) {
        slot.prefix_active = false;
      }
    }
  } else if (slot.json) {
    slot.json->feed(pieces()[size_t(tok)]);
  }
  slot.history.push_back(tok);
  ++slot.generated;
  job.push(tok);
  if (slot.json && !slot.prefix_active && slot.json->complete()) {  // nothing may follow it
    finish(slot, "stop");
    return false;
  }
  if (slot.generated >= job.request_.max_tokens || slot.decoder->n_past() >= options_.n_ctx) {
    finish(slot, "length");
    return false;
  }
  slot.pending = tok;
  return true;
}

int Scheduler::busy_slots() const {
  int busy = 0;
  for (const auto& s : slots_) busy += s->job ? 1 : 0;
  return busy;
}

void Scheduler::finish(Slot& slot, const std::string& reason, const std::string& error) {
  GenerationResult r = slot.result;
  r.finish_reason = reason;
  r.error = error;
  r.generated_tokens = slot.generated;
  r.decode_seconds = slot.generated > 0 ? seconds_between(slot.decode_start, Clock::now()) : 0;
  std::shared_ptr<Generation> job;
  {
    std::lock_guard lk(mu_);
    job = std::move(slot.job);  // leaves the slot free
    // The gauge changes with the counters, before the client hears of the end: a metrics reader
    // that sees this request finished also sees its sequence free.
    metrics_.active_sequences = busy_slots();
    ++metrics_.requests_finished;
    if (reason == "cancelled" || reason == "timeout") ++metrics_.requests_cancelled;
    metrics_.generated_tokens += uint64_t(slot.generated);
    if (slot.generated > 0) {
      metrics_.ttft_sum += r.first_token_seconds;
      for (size_t i = 0; i < metrics_.ttft_counts.size(); ++i) {
        if (i == metrics_.ttft_bounds.size() || r.first_token_seconds <= metrics_.ttft_bounds[i]) {
          ++metrics_.ttft_counts[i];
        }
      }
    }
  }
  job->finish(std::move(r));
  slot.pending = -1;
  slot.spec.reset();  // holds a reference to the sampler
  slot.sampler.reset();
  slot.json.reset();
  slot.prefix_active = false;
  slot.prefilling = false;
  slot.rest = gemma4::Input();
}

}  // namespace ug
