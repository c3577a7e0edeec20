// MTP drafter against the oracle (README-mtp.md §5.2): teacher-forced steps fed llama.cpp's target
// K/V and step inputs; the position convention (p = N, not N - 1); loading errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "kernels/kernels.h"
#include "model/gemma4/drafter.h"
#include "model/gemma4/kv_cache.h"
#include "model/gemma4/model.h"
#include "model/gemma4/synth.h"
#include "model_test_util.h"
#include "util/error.h"

namespace ug::gemma4 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Diffs {
  double max_abs = 0, mean_abs = 0;
};
Diffs diffs(const std::vector<float>& a, const std::vector<float>& b) {
  Diffs d;
  EXPECT_EQ(a.size(), b.size());
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const double e = std::fabs(double(a[i]) - double(b[i]));
    d.max_abs = std::max(d.max_abs, e);
    d.mean_abs += e;
  }
  d.mean_abs /= double(std::max<size_t>(n, 1));
  return d;
}

std::vector<fs::path> mtp_cases(const std::string& oracle) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(oracle + "/mtp")) {
    if (e.path().filename() == "case.json") out.push_back(e.path().parent_path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The target cache as llama.cpp had it after the prompt: layers n-2 / n-1 from the dump files.
void load_reference_cache(const fs::path& dir, const Model& target, int n, KvCache& cache) {
  for (int layer : {target.config.last_sliding_layer(), target.config.last_full_layer()}) {
    const LayerConfig& lc = target.config.layers[size_t(layer)];
    const auto k = test::read_floats(
        (dir / ("target_Kcur_pos_" + std::to_string(layer) + ".f32.bin")).string());
    const auto v = test::read_floats(
        (dir / ("target_Vcur_normed_" + std::to_string(layer) + ".f32.bin")).string());
    const size_t row = size_t(lc.n_kv_head) * size_t(lc.head_dim);
    ASSERT_EQ(k.size(), row * size_t(n));
    ASSERT_EQ(v.size(), row * size_t(n));
    for (int p = 0; p < n; ++p) {
      for (int g = 0; g < lc.n_kv_head; ++g) {
        const size_t off = size_t(p) * row + size_t(g) * size_t(lc.head_dim);
        kernels::quantize_row(cache.type(), k.data() + off, cache.k_row(layer, p, g), lc.head_dim);
        kernels::quantize_row(cache.type(), v.data() + off, cache.v_row(layer, p, g), lc.head_dim);
      }
    }
  }
  cache.set_n_past(n);
}

TEST(Drafter, TeacherForcedStepsMatchLlamaCpp) {
  UG_REQUIRE_ORACLE(oracle);
  ThreadPool pool(2);
  const auto target = load_model(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  int n_cases = 0;
  for (const fs::path& dir : mtp_cases(oracle)) {
    SCOPED_TRACE(dir.string());
    std::ifstream in(dir / "case.json");
    const json c = json::parse(in);
    const std::string asst = c["assistant_gguf"].get<std::string>();
    const auto drafter_model =
        load_drafter(oracle + "/mtp/models/" + fs::path(asst).filename().string());
    Drafter drafter(*drafter_model, *target, pool);
    const int n = c["n_prompt"].get<int>();
    KvCache cache(target->config, n + 8, 8, TensorType::F32);
    load_reference_cache(dir, *target, n, cache);
    const int V = target->config.n_vocab;
    const int HT = target->config.n_embd;
    std::vector<float> logits(static_cast<size_t>(V)), h_next(static_cast<size_t>(HT));
    for (const json& s : c["draft"]["steps"]) {
      const int step = s["step"].get<int>();
      const std::string pre = "step" + std::to_string(step) + "_";
      const auto xh = test::read_floats((dir / (pre + "inp_xh.f32.bin")).string());
      ASSERT_EQ(xh.size(), size_t(2 * HT));
      DraftTrace trace;
      drafter.step(cache, s["position"].get<int>(), s["input_token"].get<int32_t>(), xh.data() + HT,
                   logits.data(), h_next.data(), &trace);
      const Diffs dl =
          diffs(logits, test::read_floats((dir / (pre + "result_output.f32.bin")).string()));
      EXPECT_LE(dl.max_abs, 5e-3) << "step " << step;
      EXPECT_LE(dl.mean_abs, 5e-4) << "step " << step;
      const Diffs dh = diffs(h_next, test::read_floats((dir / (pre + "h_nextn.f32.bin")).string()));
      EXPECT_LE(dh.max_abs, 5e-3) << "step " << step;
      EXPECT_EQ(int(std::max_element(logits.begin(), logits.end()) - logits.begin()),
                s["argmax"].get<int>());
      EXPECT_LE(
          diffs(trace.pre_proj, test::read_floats((dir / (pre + "pre_proj.f32.bin")).string()))
              .max_abs,
          5e-3);
      for (int l = 0; l < drafter_model->config.n_layer; ++l) {
        const std::string ls = std::to_string(l);
        EXPECT_LE(diffs(trace.attn_out[size_t(l)],
                        test::read_floats((dir / (pre + "attn_out_" + ls + ".f32.bin")).string()))
                      .max_abs,
                  5e-3);
        EXPECT_LE(diffs(trace.out_scaled[size_t(l)],
                        test::read_floats((dir / (pre + "out_scaled_" + ls + ".f32.bin")).string()))
                      .max_abs,
                  5e-3);
      }
      EXPECT_LE(diffs(trace.result_norm,
                      test::read_floats((dir / (pre + "result_norm.f32.bin")).string()))
                    .max_abs,
                5e-3);
    }
    ++n_cases;
  }
  EXPECT_EQ(n_cases, 7);
}

// llama.cpp's files are matched at p = N (the index of the input token); p = N - 1 is far off.
TEST(Drafter, PositionConventionIsTheIndexOfTheInputToken) {
  UG_REQUIRE_ORACLE(oracle);
  ThreadPool pool(2);
  const auto target = load_model(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  const auto drafter_model = load_drafter(oracle + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf");
  Drafter drafter(*drafter_model, *target, pool);
  const fs::path dir = oracle + "/mtp/tiny-a/p30";
  const int n = 30;
  KvCache cache(target->config, n + 8, 8, TensorType::F32);
  load_reference_cache(dir, *target, n, cache);
  const int HT = target->config.n_embd;
  const auto xh = test::read_floats((dir / "step0_inp_xh.f32.bin").string());
  std::ifstream in(dir / "case.json");
  const json c = json::parse(in);
  const int32_t token = c["draft"]["steps"][0]["input_token"].get<int32_t>();
  std::vector<float> logits(static_cast<size_t>(target->config.n_vocab));
  drafter.step(cache, n - 1, token, xh.data() + HT, logits.data(), nullptr);
  // Another position moves the logits far beyond the tolerance the p = N files are matched with
  // (teacher-forced test above), so those files pin the convention.
  const auto lc = test::read_floats((dir / "step0_result_output.f32.bin").string());
  EXPECT_GE(diffs(logits, lc).max_abs, 0.3);
}

TEST(Drafter, RejectsWrongFilesAndMismatchedTargets) {
  UG_REQUIRE_ORACLE(oracle);
  const std::string target_path = oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf";
  try {
    load_drafter(target_path);
    FAIL() << "a target model loaded as a drafter";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gemma4-assistant"), std::string::npos) << e.what();
  }
  // A drafter whose pre_projection lost a column.
  const std::string bad = test::temp_path("drafter-bad.gguf");
  test::copy_gguf(oracle + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf", bad, nullptr,
                  [](test::TensorEdit& e) {
                    if (e.name == "nextn.pre_projection.weight") e.ne[0] -= 32;
                    return true;
                  });
  try {
    load_drafter(bad);
    FAIL() << "a malformed drafter loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nextn.pre_projection.weight"), std::string::npos)
        << e.what();
  }
  fs::remove(bad);
  // A drafter for a wider backbone does not fit the tiny target.
  const std::string wide = test::temp_path("drafter-wide.gguf");
  test::copy_gguf(
      oracle + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf", wide,
      [](gguf::Writer& w) { w.set_u32("gemma4-assistant.embedding_length_out", 128); },
      [](test::TensorEdit& e) {
        if (e.name == "nextn.pre_projection.weight") e.ne[0] = 256;
        if (e.name == "nextn.post_projection.weight") e.ne[1] = 128;
        return true;
      });
  const auto target = load_model(target_path);
  const auto d = load_drafter(wide);
  try {
    check_drafter_compatible(*d, *target);
    FAIL() << "an incompatible drafter was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("backbone width"), std::string::npos) << e.what();
  }
  fs::remove(wide);
}

// `unigemma synth --drafter`: the tiny synthetic drafter has the oracle's tiny assistant layout
// (same tensor names, shapes and layer types), fits tiny-a and its own synthetic target, and runs.
TEST(Drafter, SyntheticTinyDrafterHasTheOracleLayout) {
  UG_REQUIRE_ORACLE(oracle);
  SynthOptions o;
  o.shape = "tiny";
  o.type = TensorType::F32;
  o.drafter = true;
  const std::string path = test::temp_path("synth-drafter-tiny.gguf");
  write_synthetic_drafter(o, path);
  {
    const auto ours = gguf::File::open(path);
    const auto ref = gguf::File::open(oracle + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf");
    std::map<std::string, std::vector<int64_t>> want, got;
    for (const auto& t : ref->tensors()) want[t.name].assign(t.ne.begin(), t.ne.begin() + t.n_dims);
    for (const auto& t : ours->tensors()) got[t.name].assign(t.ne.begin(), t.ne.begin() + t.n_dims);
    EXPECT_EQ(got, want);
    for (const char* key :
         {"gemma4-assistant.embedding_length", "gemma4-assistant.block_count",
          "gemma4-assistant.embedding_length_out", "gemma4-assistant.nextn_predict_layers",
          "gemma4-assistant.attention.sliding_window", "gemma4-assistant.attention.key_length",
          "gemma4-assistant.attention.key_length_swa"}) {
      EXPECT_EQ(ours->get_int(key), ref->get_int(key)) << key;
    }
  }
  const auto drafter_model = load_drafter(path);
  const auto ref_model = load_drafter(oracle + "/mtp/models/gemma4-tiny-a-assistant-f32.gguf");
  ASSERT_EQ(drafter_model->config.n_layer, ref_model->config.n_layer);
  for (int i = 0; i < drafter_model->config.n_layer; ++i) {
    const LayerConfig& a = drafter_model->config.layers[size_t(i)];
    const LayerConfig& b = ref_model->config.layers[size_t(i)];
    EXPECT_EQ(a.sliding, b.sliding) << i;
    EXPECT_EQ(a.n_head, b.n_head) << i;
    EXPECT_EQ(a.n_kv_head, b.n_kv_head) << i;
    EXPECT_EQ(a.head_dim, b.head_dim) << i;
    EXPECT_EQ(a.n_ff, b.n_ff) << i;
  }
  const auto target = load_model(oracle + "/models/tiny-a/gemma4-tiny-a-f32.gguf");
  check_drafter_compatible(*drafter_model, *target);
  SynthOptions t = o;
  t.drafter = false;
  const std::string target_path = test::temp_path("synth-target-tiny.gguf");
  write_synthetic_model(t, target_path);
  const auto synth_target = load_model(target_path);
  check_drafter_compatible(*drafter_model, *synth_target);
  // One step over a short cache gives finite logits that are not all equal.
  ThreadPool pool(1);
  KvCache cache(target->config, 32, 32, TensorType::F32);
  std::vector<float> row(512, 0.1f);
  for (int layer : {target->config.last_sliding_layer(), target->config.last_full_layer()}) {
    const LayerConfig& lc = target->config.layers[size_t(layer)];
    for (int p = 0; p < 4; ++p) {
      for (int g = 0; g < lc.n_kv_head; ++g) {
        kernels::quantize_row(cache.type(), row.data(), cache.k_row(layer, p, g), lc.head_dim);
        kernels::quantize_row(cache.type(), row.data(), cache.v_row(layer, p, g), lc.head_dim);
      }
    }
  }
  cache.set_n_past(4);
  Drafter drafter(*drafter_model, *target, pool);
  std::vector<float> hidden(256, 0.5f), logits(size_t(target->config.n_vocab)), next(256);
  drafter.step(cache, 4, 4100, hidden.data(), logits.data(), next.data());
  float lo = logits[0], hi = logits[0];
  for (float x : logits) {
    ASSERT_TRUE(std::isfinite(x));
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  EXPECT_GT(hi - lo, 1e-3f);
  fs::remove(path);
  fs::remove(target_path);
}

}  // namespace
}  // namespace ug::gemma4
