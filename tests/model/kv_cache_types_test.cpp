// A separate storage type for the full-attention layers' cache (--cache-type-global): sliding
// layers keep their type bit for bit, only the global layers are quantized.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/kernels.h"
#include "model/gemma4/decoder.h"
#include "model_test_util.h"

namespace ug::gemma4 {
namespace {

std::vector<float> row(const KvCache& c, int layer, int pos, int head, bool key) {
  const KvLayer& l = c.layer(layer);
  std::vector<float> out(size_t(l.head_dim));
  kernels::dequantize_row(l.type, key ? c.k_row(layer, pos, head) : c.v_row(layer, pos, head),
                          out.data(), l.head_dim);
  return out;
}

TEST(KvCacheTypes, GlobalLayersQuantizedSlidingLayersUntouched) {
  const std::string oracle = test::oracle_dir();
  if (oracle.empty())
    GTEST_SKIP() << "oracle pack not found (../shared/oracle or UG_ORACLE_DIR); skipping";
  auto rec = test::find_text_case(oracle, "tiny-a", "f32", "a05");
  auto model = load_model(oracle + "/" + rec["model"].get<std::string>());
  const auto ids = rec["ids"].get<std::vector<int32_t>>();
  const Config& c = model->config;
  ThreadPool pool(2);
  DecoderOptions plain{int(ids.size()) + 4, 512, TensorType::F32};
  DecoderOptions mixed = plain;
  mixed.global_cache_type = TensorType::Q8_0;
  Decoder a(*model, plain, pool), b(*model, mixed, pool);
  Output oa, ob;
  a.eval_tokens(ids, Outputs::kLast, &oa);
  b.eval_tokens(ids, Outputs::kLast, &ob);
  EXPECT_LT(b.cache().reserved_bytes(), a.cache().reserved_bytes());
  EXPECT_EQ(b.cache().reserved_bytes(),
            KvCache::bytes_for(c, plain.n_ctx, 512, TensorType::F32, TensorType::Q8_0));

  // Layers before the first global layer see identical inputs: identical rows. The first global
  // layer's rows are its f32 rows rounded to q8_0 (per-32 block scale in fp16: error within one
  // step).
  int first_global = -1;
  for (int i = 0; i < c.n_layer && first_global < 0; ++i) {
    if (!c.layers[size_t(i)].sliding) first_global = i;
  }
  ASSERT_GE(first_global, 1) << "the tiny model has a global layer after sliding ones";
  const int pos = int(ids.size()) - 1;
  for (int i = 0; i <= first_global; ++i) {
    EXPECT_EQ(b.cache().layer(i).type,
              c.layers[size_t(i)].sliding ? TensorType::F32 : TensorType::Q8_0);
    for (bool key : {true, false}) {
      const auto ra = row(a.cache(), i, pos, 0, key), rb = row(b.cache(), i, pos, 0, key);
      float amax = 0, worst = 0;
      for (size_t j = 0; j < ra.size(); ++j) {
        amax = std::max(amax, std::fabs(ra[j]));
        worst = std::max(worst, std::fabs(ra[j] - rb[j]));
      }
      if (i < first_global) {
        EXPECT_EQ(ra, rb) << "layer " << i;
      } else {
        EXPECT_GT(worst, 0.0f) << "the global layer must really be quantized";
        EXPECT_LE(worst, amax / 127.0f + 1e-6f) << "layer " << i;
      }
    }
  }
  // The logits move a little, not a lot.
  EXPECT_LE(test::max_abs_diff(oa.logits.data(), ob.logits.data(), oa.logits.size()), 0.5);
}

}  // namespace
}  // namespace ug::gemma4
