// What a session will need in memory, computed before anything big is allocated, so that a run
// that cannot fit is refused with a clear message instead of being killed by the OOM killer, and
// `--ctx auto` can pick the largest context that fits.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "format/tensor_type.h"
#include "model/gemma4/config.h"

namespace ug {

struct MemoryPlanRequest {
  const gemma4::Config* config = nullptr;
  uint64_t weight_bytes = 0;  // decoder weights (mmap: resident once the first token ran)
  int n_ctx = 4096;
  int n_ubatch = 512;
  TensorType cache_type = TensorType::F16;
  std::optional<TensorType> global_cache_type;  // unset: cache_type
  uint64_t drafter_bytes = 0;                   // MTP drafter weights, 0 without one
  uint64_t projector_bytes = 0;                 // vision/audio embedder weights, 0 without them
  int max_image_tokens = 0;                     // largest image (soft tokens) a request may carry
};

struct MemoryPlan {
  int n_ctx = 0;
  uint64_t weights = 0;
  uint64_t kv_cache = 0;
  uint64_t activations = 0;  // decoder scratch, packed GEMM inputs, logits
  uint64_t drafter = 0;
  uint64_t multimodal = 0;  // projector weights + one image's pixels, patches and embeddings
  uint64_t runtime = 0;     // tokenizer, code, allocator and thread stacks (measured constant)
  uint64_t total() const {
    return weights + kv_cache + activations + drafter + multimodal + runtime;
  }
  // "6.48 GiB weights + 544.0 MiB KV (ctx 4096, f16) + ... = 7.2 GiB"
  std::string summary() const;
};

MemoryPlan plan_memory(const MemoryPlanRequest& request);

// Memory this process may still use: MemAvailable from /proc/meminfo, lowered by a cgroup v2
// limit when one applies. 0 when neither can be read.
uint64_t available_memory();

// Largest context (a multiple of 256, at most the model's trained context) whose plan fits
// `budget` bytes. Throws ug::Error with the plan of the smallest context when even that does not
// fit.
int auto_context(MemoryPlanRequest request, uint64_t budget);

// Throws ug::Error naming every component when `plan` exceeds `budget`; `budget_source` says where
// the budget came from ("available memory", "--mem-limit").
void check_memory_plan(const MemoryPlan& plan, uint64_t budget, const std::string& budget_source);

// "12G", "512M", "8GiB", "1.5g", plain bytes. Throws ug::Error on anything else.
uint64_t parse_memory_size(const std::string& text);
std::string human_bytes(double bytes);

}  // namespace ug
