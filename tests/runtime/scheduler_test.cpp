// Scheduler: continuous batching must not change any sequence's output; queue bounds, cancelling,
// prompt-cache reuse and JSON-constrained decoding on the tiny real-vocabulary model.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "model/gemma4/model.h"
#include "runtime/scheduler.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace ug {
namespace {

struct Tiny {
  std::unique_ptr<gemma4::Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
};

Tiny load_tiny(const std::string& oracle) {
  const std::string path = oracle + "/models/tiny-rv/gemma4-tiny-rv-f16.gguf";
  Tiny t;
  t.model = gemma4::load_model(path);
  t.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_gguf(*t.model->gguf));
  return t;
}

GenerationRequest request(const Tokenizer& tok, const std::string& text, int max_tokens,
                          float temperature, uint64_t seed) {
  GenerationRequest r;
  EncodeOptions eo;
  eo.add_bos = true;
  r.prompt.input.tokens = tok.encode(text, eo);
  r.prompt.ids = r.prompt.input.tokens;
  r.prompt.cache_keys = r.prompt.input.tokens;
  r.max_tokens = max_tokens;
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  return r;
}

std::vector<int32_t> drain(Generation& g) {
  std::vector<int32_t> out;
  while (g.wait(&out, std::chrono::milliseconds(50))) {
  }
  return out;
}

const char* kPrompts[8] = {"The cat sat on",
                           "Once upon a time",
                           "1, 2, 3,",
                           "Hello world",
                           "A long time ago in a galaxy far",
                           "def main():",
                           "Paris is the capital",
                           "Quantum"};

void check_batched_equals_sequential(float temperature) {
  UG_REQUIRE_ORACLE(oracle);
  Tiny t = load_tiny(oracle);
  ThreadPool pool(2);
  SchedulerOptions o;
  o.n_ctx = 256;
  o.n_ubatch = 64;
  std::vector<std::vector<int32_t>> alone;
  // Baseline: each request alone in a fresh scheduler (no prompt-cache reuse, whose chunked
  // prefill may round differently from a whole-prompt prefill).
  o.n_parallel = 1;
  for (int i = 0; i < 8; ++i) {
    Scheduler one(*t.model, *t.tokenizer, pool, o);
    auto g = one.submit(request(*t.tokenizer, kPrompts[i], 20 + i, temperature, 100 + i));
    ASSERT_TRUE(g);
    alone.push_back(drain(*g));
    EXPECT_EQ(g->result().generated_tokens, int(alone.back().size()));
  }
  o.n_parallel = 8;
  Scheduler eight(*t.model, *t.tokenizer, pool, o);
  std::vector<std::shared_ptr<Generation>> jobs;
  for (int i = 0; i < 8; ++i) {
    jobs.push_back(eight.submit(request(*t.tokenizer, kPrompts[i], 20 + i, temperature, 100 + i)));
    ASSERT_TRUE(jobs.back());
  }
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(drain(*jobs[size_t(i)]), alone[size_t(i)]) << "sequence " << i;
  }
  const SchedulerMetrics m = eight.metrics();
  // The sequences really shared steps: fewer steps than tokens.
  EXPECT_LT(m.decode_steps, m.generated_tokens);
}

TEST(Scheduler, EightParallelGreedyEqualsOneByOne) {
  check_batched_equals_sequential(0.0f);
}
TEST(Scheduler, EightParallelSeededSamplingEqualsOneByOne) {
  check_batched_equals_sequential(1.0f);
}

TEST(Scheduler, QueueBoundCancelAndPromptCache) {
  UG_REQUIRE_ORACLE(oracle);
  Tiny t = load_tiny(oracle);
  ThreadPool pool(2);
  SchedulerOptions o;
  o.n_parallel = 1;
  o.max_queue = 1;
  o.n_ctx = 512;
  Scheduler s(*t.model, *t.tokenizer, pool, o);
  auto long_job = s.submit(request(*t.tokenizer, "Tell a story", 400, 0.0f, 0));
  ASSERT_TRUE(long_job);
  // Wait until it runs, so the next one is the only one queued.
  std::vector<int32_t> first;
  while (first.empty()) ASSERT_TRUE(long_job->wait(&first, std::chrono::milliseconds(50)));
  auto queued = s.submit(request(*t.tokenizer, "Tell a story about a dog", 4, 0.0f, 0));
  ASSERT_TRUE(queued);
  EXPECT_EQ(s.submit(request(*t.tokenizer, "x", 4, 0.0f, 0)), nullptr);  // queue full
  long_job->cancel();
  drain(*long_job);
  EXPECT_EQ(long_job->result().finish_reason, "cancelled");
  drain(*queued);
  const GenerationResult r = queued->result();
  EXPECT_TRUE(r.finish_reason == "length" || r.finish_reason == "stop") << r.finish_reason;
  EXPECT_GT(r.prompt_cached, 0);  // shares "<bos>Tell a story" with the cancelled request
  EXPECT_THROW(s.submit(request(
                   *t.tokenizer,
                   [] {
                     std::string s;
                     for (int i = 0; i < 700; ++i) s += " word";
                     return s;
                   }(),
                   4, 0, 0)),
               Error);
}

TEST(Scheduler, JsonConstrainedOutputIsValidJson) {
  UG_REQUIRE_ORACLE(oracle);
  Tiny t = load_tiny(oracle);
  ThreadPool pool(2);
  SchedulerOptions o;
  o.n_ctx = 512;
  Scheduler s(*t.model, *t.tokenizer, pool, o);
  for (uint64_t seed : {1u, 2u, 3u}) {
    GenerationRequest r = request(*t.tokenizer, "Reply in JSON:", 120, 1.0f, seed);
    r.json = JsonTop::kObject;
    auto g = s.submit(r);
    ASSERT_TRUE(g);
    const std::vector<int32_t> toks = drain(*g);
    const std::string text = t.tokenizer->decode(toks, false);
    JsonValidator v(JsonTop::kObject);
    EXPECT_TRUE(v.feed(text)) << text;
    if (g->result().finish_reason == "stop") {
      EXPECT_TRUE(v.complete()) << text;
      EXPECT_TRUE(nlohmann::json::parse(text, nullptr, false).is_object()) << text;
    }
  }
}

}  // namespace
}  // namespace ug
