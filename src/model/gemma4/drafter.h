// The Gemma 4 MTP drafter ("assistant", spec §4): a small 4-layer decoder whose layers have queries
// only and attend to the target's KV cache (its last sliding and last full layer). One draft step
// maps (last token, target-space hidden) to draft logits and the next target-space hidden.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "model/gemma4/config.h"
#include "model/gemma4/kv_cache.h"
#include "model/gemma4/model.h"

namespace ug {
class SafetensorsModel;
}
namespace ug::gguf {
class File;
}

namespace ug::gemma4 {

struct DrafterLayerWeights {
  kernels::Matrix attn_q, attn_output;
  kernels::Matrix ffn_gate, ffn_up, ffn_down;
  std::vector<float> attn_norm, attn_q_norm, post_attention_norm, ffn_norm, post_ffw_norm;
  float output_scale = 1;
  std::vector<float> rope_inv_freq;  // head_dim / 2 entries
};

struct DrafterModel {
  std::string path;
  std::string format;  // "gguf" or "safetensors"
  // The drafter's own geometry: n_embd is its width (1024 on the 12B), layers[i].n_kv_head and
  // head_dim describe the target cache layer it reads. has_v is meaningless (no K/V projections).
  Config config;
  int n_embd_target = 0;            // backbone hidden size (3840 on the 12B)
  kernels::Matrix token_embd;       // [n_vocab rows, n_embd cols]: the tied LM head only
  kernels::Matrix pre_projection;   // [n_embd rows, 2 * n_embd_target cols]
  kernels::Matrix post_projection;  // [n_embd_target rows, n_embd cols]
  std::vector<float> output_norm;
  std::vector<DrafterLayerWeights> layers;
  uint64_t weight_bytes = 0;

  std::shared_ptr<gguf::File> gguf;
  std::shared_ptr<SafetensorsModel> safetensors;
  std::vector<std::vector<uint8_t>> owned;
};

// Loads a `gemma4-assistant` GGUF or a Hugging Face `Gemma4(Unified)AssistantForCausalLM` folder.
// Throws ug::Error naming the file and field for anything wrong.
std::unique_ptr<DrafterModel> load_drafter(const std::string& path);

// Throws ug::Error unless `drafter` can run on `target`: same vocabulary, backbone width equal to
// the target's hidden size, and each drafter layer's KV geometry equal to the target layer it
// reads.
void check_drafter_compatible(const DrafterModel& drafter, const Model& target);

// Target layer whose cache drafter layer `i` reads: the last sliding layer for sliding drafter
// layers, the last full layer otherwise.
int drafter_source_layer(const DrafterModel& drafter, const Model& target, int i);

// Intermediate values of one step, for localising differences against a reference.
struct DraftTrace {
  std::vector<float> pre_proj;                 // [n_embd]
  std::vector<std::vector<float>> attn_out;    // per layer: residual after attention
  std::vector<std::vector<float>> out_scaled;  // per layer: layer output
  std::vector<float> result_norm;              // [n_embd]: LM-head input
};

class Drafter {
 public:
  // `drafter` and `target` must outlive this object; checks compatibility.
  Drafter(const DrafterModel& drafter, const Model& target, ThreadPool& pool);

  const DrafterModel& model() const { return drafter_; }
  int n_vocab() const { return drafter_.config.n_vocab; }
  int n_embd_target() const { return drafter_.n_embd_target; }

  // One draft step at position `pos` (= the position `token` will occupy = cache.n_past(); every
  // step of a round uses the same position). Keys visible: all cached positions < pos, limited to
  // the sliding window on sliding layers exactly as the target's own query at `pos` would see them.
  // `hidden`: n_embd_target values (the target's post-final-norm hidden that produced `token`, or
  // the previous step's `hidden_next`). Writes n_vocab raw logits (no softcap, no suppression) and
  // n_embd_target values to `hidden_next` (either may be null). `cache` must be the target's.
  void step(const KvCache& cache, int pos, int32_t token, const float* hidden, float* logits,
            float* hidden_next, DraftTrace* trace = nullptr);

 private:
  void attention(const KvCache& cache, int il, int pos);

  const DrafterModel& drafter_;
  const Model& target_;
  ThreadPool& pool_;
  std::vector<int> source_layer_;
  // Scratch for one position.
  std::vector<float> xh_, z_, a_, q_, attn_, o_, gate_, up_, d_, rope_;
};

}  // namespace ug::gemma4
