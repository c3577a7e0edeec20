// The decoder against the oracle: exact reference, llama.cpp, and self-consistency of the paths
// (batched vs chunked vs single-token decode, KV cache types, rollback, HF twin).
#include <gtest/gtest.h>

#include <cmath>

#include "model/gemma4/decoder.h"
#include "model_test_util.h"
#include "util/error.h"

namespace ug::gemma4 {
namespace {

using test::find_text_case;
using test::max_abs_diff;
using test::read_floats;

std::vector<float> all_logits(const Model& m, const std::vector<int32_t>& ids, int n_ubatch,
                              TensorType cache, ThreadPool& pool) {
  DecoderOptions o;
  o.n_ctx = int(ids.size()) + 4;
  o.n_ubatch = n_ubatch;
  o.cache_type = cache;
  Decoder d(m, o, pool);
  Output out;
  d.eval_tokens(ids, Outputs::kAll, &out);
  EXPECT_EQ(out.n_rows, int(ids.size()));
  return out.logits;
}

class DecoderOracle : public ::testing::Test {
 protected:
  void SetUp() override {
    oracle_ = test::oracle_dir();
    if (oracle_.empty())
      GTEST_SKIP() << "oracle pack not found (../shared/oracle or UG_ORACLE_DIR); skipping";
  }
  std::string oracle_;
  ThreadPool pool_{2};
};

TEST_F(DecoderOracle, F32MatchesReferenceAndLlamaCpp) {
  auto rec =
      find_text_case(oracle_, "tiny-a", "f32", "a05");  // 100 tokens, crosses the window often
  auto model = load_model(oracle_ + "/" + rec["model"].get<std::string>());
  const auto ids = rec["ids"].get<std::vector<int32_t>>();
  const size_t V = rec["n_vocab"].get<size_t>(), n = ids.size();
  const auto logits = all_logits(*model, ids, 512, TensorType::F32, pool_);
  const auto ref = read_floats(oracle_ + "/" + rec["files"]["ref_last"].get<std::string>());
  EXPECT_LE(max_abs_diff(logits.data() + (n - 1) * V, ref.data(), V), 1e-3);
  const auto lc = read_floats(oracle_ + "/" + rec["files"]["lc_all"].get<std::string>());
  ASSERT_EQ(lc.size(), n * V);
  EXPECT_LE(max_abs_diff(logits.data(), lc.data(), n * V), 1e-2);
}

TEST_F(DecoderOracle, ChunkedPrefillAndDecodeMatchOneBatch) {
  auto rec = find_text_case(oracle_, "tiny-a", "f32", "a03");
  auto model = load_model(oracle_ + "/" + rec["model"].get<std::string>());
  const auto ids = rec["ids"].get<std::vector<int32_t>>();
  const size_t V = size_t(model->config.n_vocab), n = ids.size();
  const auto batch = all_logits(*model, ids, 512, TensorType::F32, pool_);
  const auto chunked = all_logits(*model, ids, 5, TensorType::F32, pool_);
  EXPECT_LE(max_abs_diff(batch.data(), chunked.data(), n * V), 1e-4);

  DecoderOptions o;
  o.n_ctx = int(n);
  o.cache_type = TensorType::F32;
  Decoder d(*model, o, pool_);
  Output out;
  for (size_t i = 0; i < n; ++i) {
    d.eval_tokens({ids[i]}, Outputs::kLast, &out);
    ASSERT_LE(max_abs_diff(out.logits.data(), batch.data() + i * V, V), 1e-4) << "position " << i;
  }
}

TEST_F(DecoderOracle, RollbackRecomputesIdentically) {
  auto rec = find_text_case(oracle_, "tiny-a", "f32", "a03");
  auto model = load_model(oracle_ + "/" + rec["model"].get<std::string>());
  const auto ids = rec["ids"].get<std::vector<int32_t>>();
  DecoderOptions o;
  o.n_ctx = 64;
  o.n_ubatch = 8;
  o.cache_type = TensorType::F32;
  Decoder d(*model, o, pool_);
  Output first, again;
  std::vector<int32_t> head(ids.begin(), ids.begin() + 30),
      tail(ids.begin() + 30, ids.begin() + 35);
  d.eval_tokens(head, Outputs::kNone, &first);
  d.eval_tokens(tail, Outputs::kAll, &first);
  d.cache().truncate(30);
  d.eval_tokens(tail, Outputs::kAll, &again);
  EXPECT_EQ(max_abs_diff(first.logits.data(), again.logits.data(), first.logits.size()), 0.0);
  EXPECT_THROW(d.cache().truncate(30 - o.n_ubatch - 1), Error);
}

TEST_F(DecoderOracle, CacheTypesStayClose) {
  auto rec = find_text_case(oracle_, "tiny-a", "f32", "a05");
  auto model = load_model(oracle_ + "/" + rec["model"].get<std::string>());
  const auto ids = rec["ids"].get<std::vector<int32_t>>();
  const size_t V = size_t(model->config.n_vocab), n = ids.size();
  const auto f32 = all_logits(*model, ids, 512, TensorType::F32, pool_);
  // Measured drift of the lower-precision caches on this prompt is far below these bounds; a broken
  // quantizer or wrong row addressing gives differences of order 1.
  const std::pair<TensorType, double> cases[] = {
      {TensorType::F16, 0.02}, {TensorType::BF16, 0.15}, {TensorType::Q8_0, 0.15}};
  for (const auto& [type, tol] : cases) {
    const auto other = all_logits(*model, ids, 512, type, pool_);
    EXPECT_LE(max_abs_diff(f32.data(), other.data(), n * V), tol) << tensor_type_name(type);
  }
}

TEST_F(DecoderOracle, HfTwinEqualsGguf) {
  auto gguf_model = load_model(oracle_ + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  auto hf_model = load_model(oracle_ + "/models/tiny-a/hf");
  EXPECT_EQ(hf_model->format, "safetensors");
  EXPECT_EQ(hf_model->config.n_vocab, gguf_model->config.n_vocab);
  EXPECT_EQ(hf_model->suppress_tokens.size(), 2u);
  auto rec = find_text_case(oracle_, "tiny-a", "f32", "a05");
  const auto ids = rec["ids"].get<std::vector<int32_t>>();
  const auto a = all_logits(*gguf_model, ids, 512, TensorType::F32, pool_);
  const auto b = all_logits(*hf_model, ids, 512, TensorType::F32, pool_);
  // Same fp32 weights; the only difference is rope_freqs' 1e30 divisor vs HF's exact zero
  // frequency.
  EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), 1e-5);
}

TEST_F(DecoderOracle, ContextOverflowIsAnErrorAndLeavesCacheIntact) {
  auto model = load_model(oracle_ + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  DecoderOptions o;
  o.n_ctx = 8;
  Decoder d(*model, o, pool_);
  Output out;
  d.eval_tokens({2, 818, 505}, Outputs::kLast, &out);
  EXPECT_THROW(d.eval_tokens(std::vector<int32_t>(6, 505), Outputs::kLast, &out), Error);
  EXPECT_EQ(d.n_past(), 3);
  EXPECT_THROW(d.eval_tokens({999999}, Outputs::kLast, &out), Error);
  EXPECT_EQ(d.n_past(), 3);
}

}  // namespace
}  // namespace ug::gemma4
