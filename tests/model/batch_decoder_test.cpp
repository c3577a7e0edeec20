// BatchDecoder: one decode step for several sequences must give each sequence exactly the logits
// it gets when decoded alone (continuous batching must not change anyone's output).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "model/gemma4/decoder.h"
#include "model/gemma4/model.h"
#include "model_test_util.h"
#include "util/error.h"

namespace ug::gemma4 {
namespace {

TEST(BatchDecoder, RowsMatchSingleSequenceDecodeExactly) {
  UG_REQUIRE_ORACLE(oracle);
  auto model = load_model(oracle + "/models/tiny-rv/gemma4-tiny-rv-f16.gguf");
  ThreadPool pool(2);
  // Sliding layers in f16, the global layer in q8_0: each layer must be written in its own type.
  const DecoderOptions opts{256, 32, TensorType::F16, false, TensorType::Q8_0};
  const int n_seq = 5;
  // Different prompt lengths, so the sequences sit at different positions (some past the
  // sliding window of 16).
  std::vector<std::unique_ptr<Decoder>> alone, batched;
  std::vector<std::vector<float>> alone_logits(n_seq);
  std::vector<int32_t> next(n_seq);
  for (int s = 0; s < n_seq; ++s) {
    std::vector<int32_t> prompt;
    for (int i = 0; i < 3 + 7 * s; ++i) prompt.push_back(int32_t(100 + 37 * i + 1000 * s));
    alone.push_back(std::make_unique<Decoder>(*model, opts, pool));
    batched.push_back(std::make_unique<Decoder>(*model, opts, pool));
    Output out;
    alone[size_t(s)]->eval_tokens(prompt, Outputs::kLast, &out);
    batched[size_t(s)]->eval_tokens(prompt, Outputs::kLast, &out);
    next[size_t(s)] = int32_t(500 + s);
  }
  BatchDecoder batch(*model, pool);
  const int64_t V = model->config.n_vocab;
  for (int step = 0; step < 12; ++step) {
    // A changing subset joins each step, as requests come and go.
    std::vector<KvCache*> caches;
    std::vector<int32_t> tokens;
    std::vector<int> members;
    for (int s = 0; s < n_seq; ++s) {
      if ((step + s) % 3 == 2) continue;
      caches.push_back(&batched[size_t(s)]->cache());
      tokens.push_back(next[size_t(s)]);
      members.push_back(s);
    }
    std::vector<float> logits;
    batch.step(caches, tokens, &logits);
    ASSERT_EQ(logits.size(), members.size() * size_t(V));
    for (size_t i = 0; i < members.size(); ++i) {
      const int s = members[i];
      Output out;
      alone[size_t(s)]->eval_tokens({next[size_t(s)]}, Outputs::kLast, &out);
      ASSERT_EQ(0, std::memcmp(out.logits.data(), logits.data() + i * size_t(V),
                               size_t(V) * sizeof(float)))
          << "step " << step << " sequence " << s;
      ASSERT_EQ(alone[size_t(s)]->n_past(), batched[size_t(s)]->n_past());
      next[size_t(s)] = int32_t((next[size_t(s)] * 7 + 11) % 5000);
    }
  }
}

TEST(BatchDecoder, RejectsBadInputWithoutWriting) {
  UG_REQUIRE_ORACLE(oracle);
  auto model = load_model(oracle + "/models/tiny-rv/gemma4-tiny-rv-f16.gguf");
  ThreadPool pool(1);
  Decoder d(*model, DecoderOptions{4, 4, TensorType::F16}, pool);
  BatchDecoder batch(*model, pool);
  std::vector<float> logits;
  EXPECT_THROW(batch.step({&d.cache()}, {-3}, &logits), Error);
  EXPECT_THROW(batch.step({&d.cache()}, {1, 2}, &logits), Error);
  EXPECT_EQ(d.n_past(), 0);
  Output out;
  d.eval_tokens({1, 2, 3, 4}, Outputs::kLast, &out);
  EXPECT_THROW(batch.step({&d.cache()}, {5}, &logits), Error);
  EXPECT_EQ(d.n_past(), 4);
}

}  // namespace
}  // namespace ug::gemma4
