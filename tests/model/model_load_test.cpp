// Loading: every oracle model variant, and one-line errors for each kind of broken model file.
#include <gtest/gtest.h>

#include "model/gemma4/decoder.h"
#include "model/gemma4/synth.h"
#include "model_test_util.h"
#include "util/error.h"

namespace ug::gemma4 {
namespace {

using test::copy_gguf;
using test::temp_path;
using test::TensorEdit;

class ModelLoad : public ::testing::Test {
 protected:
  void SetUp() override {
    oracle_ = test::oracle_dir();
    if (oracle_.empty())
      GTEST_SKIP() << "oracle pack not found (../shared/oracle or UG_ORACLE_DIR); skipping";
    f32_ = oracle_ + "/models/tiny-a/gemma4-tiny-a-f32.gguf";
  }
  // Expects load_model to throw ug::Error whose message names the file and contains `what`.
  void expect_error(const std::string& path, const std::string& what) {
    try {
      load_model(path);
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  }
  std::string oracle_, f32_;
};

TEST_F(ModelLoad, AllOracleVariants) {
  for (const char* v : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q6_k"}) {
    auto m = load_model(oracle_ + "/models/tiny-a/gemma4-tiny-a-" + v + ".gguf");
    EXPECT_EQ(m->config.n_layer, 6) << v;
    EXPECT_EQ(m->config.n_vocab, 4198) << v;
    EXPECT_EQ(m->config.sliding_window, 16) << v;
    EXPECT_FALSE(m->config.layers[5].sliding) << v;
    EXPECT_FALSE(m->config.layers[5].has_v) << v;
    EXPECT_EQ(m->config.layers[5].head_dim, 128) << v;
    EXPECT_EQ(m->config.layers[0].n_kv_head, 2) << v;
    EXPECT_EQ(m->eog_tokens.size(), 3u) << v;  // <eos>, <|tool_response>, <turn|>
  }
  auto q4 = load_model(oracle_ + "/models/tiny-a/gemma4-tiny-a-q4_0.gguf");
  EXPECT_EQ(q4->token_embd.type, TensorType::Q6_K);
  // Full-layer RoPE: 16 of 64 pairs rotate (factor 0.25), the rest are (numerically) the identity.
  const auto& inv = q4->layers[5].rope_inv_freq;
  ASSERT_EQ(inv.size(), 64u);
  EXPECT_FLOAT_EQ(inv[0], 1.0f);
  EXPECT_GT(inv[15], 1e-3f);
  EXPECT_LT(inv[16], 1e-20f);
}

TEST_F(ModelLoad, WrongArchitecture) {
  const auto p = temp_path("arch.gguf");
  copy_gguf(
      f32_, p, [](gguf::Writer& w) { w.set_string("general.architecture", "llama"); }, nullptr);
  expect_error(p, "general.architecture");
}

TEST_F(ModelLoad, UnsupportedVariantsNameTheFeature) {
  const auto p = temp_path("ple.gguf");
  copy_gguf(
      f32_, p, [](gguf::Writer& w) { w.set_u32("gemma4.embedding_length_per_layer_input", 256); },
      nullptr);
  expect_error(p, "per-layer embeddings");
  copy_gguf(
      f32_, p, [](gguf::Writer& w) { w.set_u32("gemma4.attention.shared_kv_layers", 2); }, nullptr);
  expect_error(p, "KV sharing");
  copy_gguf(
      f32_, p, [](gguf::Writer& w) { w.set_u32("gemma4.expert_count", 128); }, nullptr);
  expect_error(p, "mixture-of-experts");
}

TEST_F(ModelLoad, MissingTensor) {
  const auto p = temp_path("missing.gguf");
  copy_gguf(f32_, p, nullptr, [](TensorEdit& e) { return e.name != "blk.3.ffn_up.weight"; });
  expect_error(p, "blk.3.ffn_up.weight': missing");
}

TEST_F(ModelLoad, ShapeMismatch) {
  const auto p = temp_path("shape.gguf");
  copy_gguf(f32_, p, nullptr, [](TensorEdit& e) {
    if (e.name == "blk.1.attn_q.weight") e.ne[1] = 128;
    return true;
  });
  expect_error(p, "blk.1.attn_q.weight': shape {256, 128}, expected {256, 256}");
}

TEST_F(ModelLoad, UnsupportedTensorType) {
  const auto p = temp_path("type.gguf");
  copy_gguf(f32_, p, nullptr, [](TensorEdit& e) {
    if (e.name == "blk.2.ffn_gate.weight") e.type = TensorType::Q4_1;
    return true;
  });
  expect_error(p, "blk.2.ffn_gate.weight': tensor type Q4_1 is not supported");
}

TEST_F(ModelLoad, MissingMetadata) {
  const auto p = temp_path("meta.gguf");
  auto f = gguf::File::open(f32_);
  gguf::Writer w(f->alignment());
  for (const auto& kv : f->metadata()) {
    if (kv.key != "gemma4.attention.sliding_window") w.set(kv.key, kv.value);
  }
  w.write(p);
  expect_error(p, "gemma4.attention.sliding_window");
}

TEST(ModelSynth, TinySynthLoadsAndRuns) {
  const auto p = temp_path("synth-tiny.gguf");
  for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0, TensorType::F16, TensorType::Q4_K}) {
    SynthOptions o;
    o.shape = "tiny";
    o.type = t;
    write_synthetic_model(o, p);
    auto m = load_model(p);
    EXPECT_EQ(m->config.n_layer, 6);
    EXPECT_EQ(m->token_embd.type, t == TensorType::Q4_0 ? TensorType::Q6_K : t);
    ThreadPool pool(2);
    DecoderOptions d;
    d.n_ctx = 32;
    Decoder dec(*m, d, pool);
    Output out;
    dec.eval_tokens({2, 4100, 4101, 4102}, Outputs::kLast, &out);
    for (float x : out.logits) ASSERT_TRUE(std::isfinite(x)) << tensor_type_name(t);
    // Random but not degenerate: the logits have spread.
    const auto [mn, mx] = std::minmax_element(out.logits.begin(), out.logits.end());
    EXPECT_GT(*mx - *mn, 0.5f) << tensor_type_name(t);
  }
}

}  // namespace
}  // namespace ug::gemma4
