// The memory plan: its parts add up, --ctx auto picks the largest context that fits, and the plan
// agrees with what the decoder actually allocates.
#include "runtime/memory_plan.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "kernels/thread_pool.h"
#include "model/gemma4/decoder.h"
#include "model/gemma4/kv_cache.h"
#include "model/gemma4/model.h"
#include "model/gemma4/synth.h"
#include "util/error.h"

namespace ug {
namespace {

class MemoryPlanTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    path_ = (std::filesystem::temp_directory_path() /
             ("ug-memplan-" + std::to_string(::getpid()) + ".gguf"))
                .string();
    gemma4::SynthOptions o;
    o.shape = "tiny";
    o.type = TensorType::Q8_0;
    gemma4::write_synthetic_model(o, path_);
    model_ = gemma4::load_model(path_).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    std::filesystem::remove(path_);
  }
  MemoryPlanRequest request(int n_ctx) const {
    MemoryPlanRequest r;
    r.config = &model_->config;
    r.weight_bytes = model_->weight_bytes;
    r.n_ctx = n_ctx;
    r.n_ubatch = 512;
    return r;
  }
  static std::string path_;
  static gemma4::Model* model_;
};
std::string MemoryPlanTest::path_;
gemma4::Model* MemoryPlanTest::model_ = nullptr;

TEST_F(MemoryPlanTest, PartsAddUpAndMatchTheCacheAndScratch) {
  const MemoryPlan p = plan_memory(request(4096));
  EXPECT_EQ(p.n_ctx, 4096);
  EXPECT_EQ(p.weights, model_->weight_bytes);
  EXPECT_EQ(p.kv_cache, gemma4::KvCache::bytes_for(model_->config, 4096, 512, TensorType::F16));
  EXPECT_GE(p.activations, gemma4::Decoder::scratch_bytes(model_->config, 512));
  EXPECT_EQ(p.drafter, 0u);
  EXPECT_EQ(p.multimodal, 0u);
  EXPECT_EQ(p.total(), p.weights + p.kv_cache + p.activations + p.runtime);
  // The cache the decoder builds reserves exactly what the plan counts.
  ThreadPool pool(1);
  gemma4::Decoder d(*model_, {4096, 512, TensorType::F16}, pool);
  EXPECT_EQ(d.cache().reserved_bytes(), p.kv_cache);
  // A q8_0 cache is smaller; a longer context is larger; a drafter and projector add up.
  MemoryPlanRequest r = request(4096);
  r.cache_type = TensorType::Q8_0;
  EXPECT_LT(plan_memory(r).kv_cache, p.kv_cache);
  EXPECT_GT(plan_memory(request(8192)).kv_cache, p.kv_cache);
  r = request(4096);
  r.drafter_bytes = 1000000;
  r.projector_bytes = 2000000;
  r.max_image_tokens = 280;
  const MemoryPlan q = plan_memory(r);
  EXPECT_GT(q.drafter, 1000000u);
  EXPECT_GT(q.multimodal, 2000000u);
  EXPECT_NE(q.summary().find("drafter"), std::string::npos);
}

TEST_F(MemoryPlanTest, AutoContextIsTheLargestThatFits) {
  const uint64_t budget = plan_memory(request(2048)).total() + 1;
  const int n = auto_context(request(4096), budget);
  EXPECT_EQ(n % 256, 0);
  EXPECT_GE(n, 2048);
  EXPECT_LE(plan_memory(request(n)).total(), budget);
  if (n < model_->config.n_ctx_train) {
    EXPECT_GT(plan_memory(request(n + 256)).total(), budget);
  }
  // Ample memory: the trained context. Too little for anything: an error naming the plan.
  EXPECT_EQ(auto_context(request(4096), uint64_t(1) << 50), model_->config.n_ctx_train);
  try {
    auto_context(request(4096), 1024);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not enough memory"), std::string::npos) << e.what();
  }
}

TEST_F(MemoryPlanTest, CheckNamesTheParts) {
  const MemoryPlan p = plan_memory(request(4096));
  EXPECT_NO_THROW(check_memory_plan(p, p.total(), "--mem-limit"));
  EXPECT_NO_THROW(check_memory_plan(p, 0, "available memory"));  // unknown budget: no check
  try {
    check_memory_plan(p, p.total() - 1, "--mem-limit");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("weights"), std::string::npos) << m;
    EXPECT_NE(m.find("KV (ctx 4096)"), std::string::npos) << m;
    EXPECT_NE(m.find("--mem-limit"), std::string::npos) << m;
  }
}

TEST(MemorySize, Parses) {
  EXPECT_EQ(parse_memory_size("1024"), 1024u);
  EXPECT_EQ(parse_memory_size("12G"), 12ull << 30);
  EXPECT_EQ(parse_memory_size("12GiB"), 12ull << 30);
  EXPECT_EQ(parse_memory_size("512m"), 512ull << 20);
  EXPECT_EQ(parse_memory_size("1.5g"), 3ull << 29);
  EXPECT_EQ(parse_memory_size("2TB"), 2ull << 40);
  for (const char* bad : {"", "G", "-1G", "12X", "1.2.3G", "0", "1e30"}) {
    EXPECT_THROW(parse_memory_size(bad), Error) << bad;
  }
}

TEST(MemorySize, AvailableMemoryIsReadable) {
  // Linux always has /proc/meminfo; the value must be plausible (more than 1 MiB).
  EXPECT_GT(available_memory(), uint64_t(1) << 20);
}

}  // namespace
}  // namespace ug
