// Scheduler: continuous batching must not change any sequence's output; queue bounds, cancelling,
// prompt-cache reuse and JSON-constrained decoding on the tiny real-vocabulary model.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "model/gemma4/drafter.h"
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

std::string long_prompt(int i) {
  std::string s = "Story " + std::to_string(i) + ":";
  for (int w = 0; w < 30 + 7 * i; ++w) s += " word" + std::to_string((w * 7 + i) % 13);
  return s;
}

// Chunked prefill: prompts several ubatches long, admitted while other sequences decode, give the
// same greedy tokens as each request alone with its prompt evaluated whole.
TEST(Scheduler, ChunkedPrefillKeepsOutputs) {
  UG_REQUIRE_ORACLE(oracle);
  Tiny t = load_tiny(oracle);
  ThreadPool pool(2);
  SchedulerOptions o;
  o.n_ctx = 512;
  o.n_ubatch = 16;
  std::vector<std::vector<int32_t>> alone;
  o.n_parallel = 1;
  o.chunked_prefill = false;
  for (int i = 0; i < 4; ++i) {
    Scheduler one(*t.model, *t.tokenizer, pool, o);
    auto g = one.submit(request(*t.tokenizer, long_prompt(i), 24, 0.0f, 0));
    ASSERT_TRUE(g);
    alone.push_back(drain(*g));
    ASSERT_FALSE(alone.back().empty());
  }
  o.n_parallel = 4;
  o.chunked_prefill = true;
  Scheduler four(*t.model, *t.tokenizer, pool, o);
  std::vector<std::shared_ptr<Generation>> jobs;
  jobs.push_back(four.submit(request(*t.tokenizer, long_prompt(0), 24, 0.0f, 0)));
  // The others arrive once the first is generating: their prompts are chunked between its steps.
  std::vector<int32_t> first;
  while (first.empty()) ASSERT_TRUE(jobs[0]->wait(&first, std::chrono::milliseconds(20)));
  for (int i = 1; i < 4; ++i) {
    jobs.push_back(four.submit(request(*t.tokenizer, long_prompt(i), 24, 0.0f, 0)));
  }
  std::vector<int32_t> rest = drain(*jobs[0]);
  first.insert(first.end(), rest.begin(), rest.end());
  EXPECT_EQ(first, alone[0]);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(drain(*jobs[size_t(i)]), alone[size_t(i)]) << i;
  const SchedulerMetrics m = four.metrics();
  uint64_t chunks_needed = 0;
  for (int i = 0; i < 4; ++i) {
    EncodeOptions eo;
    eo.add_bos = true;
    chunks_needed += (t.tokenizer->encode(long_prompt(i), eo).size() + 15) / 16;
  }
  EXPECT_EQ(m.prompt_chunks, chunks_needed);  // every prompt went in ubatch-sized chunks
}

// Schema-constrained decoding: whatever the (random) model prefers, the output parses and has the
// schema's shape, even when it runs into max_tokens.
TEST(Scheduler, SchemaConstrainedOutputValidates) {
  UG_REQUIRE_ORACLE(oracle);
  Tiny t = load_tiny(oracle);
  ThreadPool pool(2);
  SchedulerOptions o;
  o.n_ctx = 512;
  Scheduler s(*t.model, *t.tokenizer, pool, o);
  const auto schema = JsonSchema::compile(nlohmann::json::parse(R"({"type":"object",
    "properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer"},
    "color":{"enum":["red","green"]},"tags":{"type":"array","items":{"type":"boolean"},
    "maxItems":3},"pet":{"anyOf":[{"type":"null"},{"type":"object","properties":{
    "legs":{"type":"number"}}}]}}})"),
                                          /*strict=*/true);
  for (uint64_t seed : {1u, 2u, 3u, 4u}) {
    GenerationRequest r = request(*t.tokenizer, "Reply in JSON:", seed == 4 ? 64 : 150, 1.0f, seed);
    r.json_schema = schema;
    auto g = s.submit(r);
    ASSERT_TRUE(g);
    const std::vector<int32_t> toks = drain(*g);
    const std::string text = t.tokenizer->decode(toks, false);
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    ASSERT_TRUE(j.is_object()) << text << " (" << g->result().finish_reason << ", "
                               << g->result().generated_tokens << " tokens, seed " << seed << ")";
    ASSERT_EQ(j.size(), 5u) << text;  // strict: every property, nothing else
    EXPECT_TRUE(j["name"].is_string() && j["name"].get<std::string>().size() <= 12 * 4) << text;
    EXPECT_TRUE(j["age"].is_number_integer()) << text;
    EXPECT_TRUE(j["color"] == "red" || j["color"] == "green") << text;
    ASSERT_TRUE(j["tags"].is_array()) << text;
    EXPECT_LE(j["tags"].size(), 3u) << text;
    for (const auto& b : j["tags"]) EXPECT_TRUE(b.is_boolean()) << text;
    EXPECT_TRUE(j["pet"].is_null() ||
                (j["pet"].is_object() && j["pet"].size() == 1 && j["pet"]["legs"].is_number()))
        << text;
  }
}

// Forced prefixes (tool_choice required/named) and banned tokens (tool_choice none).
TEST(Scheduler, ForcedPrefixAndBannedTokens) {
  UG_REQUIRE_ORACLE(oracle);
  Tiny t = load_tiny(oracle);
  ThreadPool pool(2);
  SchedulerOptions o;
  o.n_ctx = 512;
  Scheduler s(*t.model, *t.tokenizer, pool, o);
  const std::string call = "<|tool_call>call:get_weather{";
  GenerationRequest r = request(*t.tokenizer, "Hello", 30, 0.0f, 0);
  r.forced_prefixes = {"<|tool_call>call:lookup{", call};
  auto g = s.submit(r);
  ASSERT_TRUE(g);
  std::string text;
  for (int32_t id : drain(*g)) text += t.tokenizer->token_piece(id, true);
  EXPECT_EQ(text.compare(0, call.size(), call), 0) << text;

  // Greedy picks some token first; banned, it never appears.
  auto free_run = s.submit(request(*t.tokenizer, "Hello", 12, 0.0f, 0));
  const std::vector<int32_t> free_tokens = drain(*free_run);
  ASSERT_FALSE(free_tokens.empty());
  GenerationRequest banned = request(*t.tokenizer, "Hello", 12, 0.0f, 0);
  banned.banned_tokens = {free_tokens[0]};
  auto b = s.submit(banned);
  const std::vector<int32_t> out = drain(*b);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(std::count(out.begin(), out.end(), free_tokens[0]), 0);
}

// MTP drafter: greedy output identical to plain decoding, with drafts really proposed and
// accepted; with two sequences at once the batched plain step takes over and still agrees.
TEST(Scheduler, SpeculativeGreedyEqualsPlain) {
  UG_REQUIRE_ORACLE(oracle);
  auto target = gemma4::load_model(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  Tokenizer tok = Tokenizer::from_gguf(*target->gguf);
  auto dmodel = gemma4::load_drafter(oracle + "/mtp/models/gemma4-tiny-a-assistant-echo-f32.gguf");
  ThreadPool pool(2);
  gemma4::Drafter drafter(*dmodel, *target, pool);
  auto req = [&](int i, float temperature) {
    GenerationRequest r;
    for (int k = 0; k < 6 + i; ++k) r.prompt.input.tokens.push_back(int32_t(7 + 31 * k + 5 * i));
    r.prompt.ids = r.prompt.cache_keys = r.prompt.input.tokens;
    r.max_tokens = 40;
    r.sampling.temperature = temperature;
    r.sampling.seed = uint64_t(10 + i);
    return r;
  };
  SchedulerOptions o;
  o.n_ctx = 256;
  o.n_parallel = 2;
  std::vector<std::vector<int32_t>> plain;
  {
    Scheduler s(*target, tok, pool, o);
    for (int i = 0; i < 3; ++i) plain.push_back(drain(*s.submit(req(i, 0.0f))));
  }
  o.drafter = &drafter;
  o.speculative.adaptive = false;
  o.speculative.draft_max = 3;
  Scheduler s(*target, tok, pool, o);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(drain(*s.submit(req(i, 0.0f))), plain[size_t(i)]) << i;
  SchedulerMetrics m = s.metrics();
  EXPECT_GT(m.spec_rounds, 0u);
  EXPECT_GT(m.spec_drafted, 0u);
  EXPECT_GT(m.spec_accepted, 0u);  // the echo drafter is often right on this model
  EXPECT_LE(m.spec_accepted, m.spec_drafted);
  EXPECT_LT(m.decode_steps, m.generated_tokens);  // rounds emitted several tokens
  // Two at once: plain batched steps (and speculation again when one is left alone).
  auto a = s.submit(req(0, 0.0f));
  auto b = s.submit(req(1, 0.0f));
  EXPECT_EQ(drain(*a), plain[0]);
  EXPECT_EQ(drain(*b), plain[1]);
  // Sampling runs through rejection sampling and keeps to the limits.
  auto sampled = s.submit(req(2, 1.0f));
  const std::vector<int32_t> st = drain(*sampled);
  EXPECT_LE(st.size(), 40u);
  for (int32_t id : st) EXPECT_TRUE(id >= 0 && id < target->config.n_vocab);
}

}  // namespace
}  // namespace ug
