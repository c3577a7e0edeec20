// The Gemma 4 decoder forward pass over a KV cache (spec §1.3).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "kernels/thread_pool.h"
#include "model/gemma4/kv_cache.h"
#include "model/gemma4/model.h"

namespace ug::gemma4 {

struct DecoderOptions {
  int n_ctx = 4096;
  int n_ubatch = 512;  // positions per prompt-processing chunk
  TensorType cache_type = TensorType::F16;
  bool commit_kv = false;  // touch every KV page up front (fail now, not mid-conversation)
  // Storage of the full-attention layers' cache (the part that grows with the context); unset:
  // cache_type.
  std::optional<TensorType> global_cache_type;
};

// One input position: a text token, or a precomputed embedding row (multimodal soft token).
// Positions with the same block >= 0 form one bidirectional block (image / video frame).
struct Input {
  std::vector<int32_t> tokens;    // token id, or -1 where `embeddings` supplies the row
  std::vector<float> embeddings;  // [count of -1 tokens][n_embd], in order of appearance
  std::vector<int32_t> block;     // empty, or one block id per position (-1 = none)
};

enum class Outputs { kNone, kLast, kAll };

struct Output {
  int n_rows = 0;
  std::vector<float> logits;  // [n_rows][n_vocab], after the final softcap
  std::vector<float> hidden;  // [n_rows][n_embd], after the final norm (the LM-head input)
};

class Decoder {
 public:
  Decoder(const Model& model, const DecoderOptions& options, ThreadPool& pool);

  const Model& model() const { return model_; }
  KvCache& cache() { return cache_; }
  const KvCache& cache() const { return cache_; }
  int n_past() const { return cache_.n_past(); }
  // Bytes of the per-chunk working buffers for `n_ubatch` positions (the memory plan uses it).
  static uint64_t scratch_bytes(const Config& config, int n_ubatch);

  // Appends `input` at positions n_past.. and computes the requested outputs. A bidirectional block
  // is never split across chunks. Throws ug::Error when the context would overflow or an id is out
  // of range; the cache is unchanged in that case.
  void eval(const Input& input, Outputs outputs, Output* out);
  // Called after each prompt chunk with (positions done, total) of the current eval().
  void set_progress(std::function<void(int, int)> progress) { progress_ = std::move(progress); }
  // Convenience for plain token sequences.
  void eval_tokens(const std::vector<int32_t>& tokens, Outputs outputs, Output* out);

 private:
  struct Scratch;
  void eval_chunk(const Input& input, int begin, int end, size_t embd_row, Outputs outputs,
                  Output* out);
  void layer_forward(int il, int n, int pos0, const int32_t* block_end);

  const Model& model_;
  DecoderOptions options_;
  ThreadPool& pool_;
  KvCache cache_;
  std::shared_ptr<Scratch> scratch_;
  std::function<void(int, int)> progress_;
};

// One decode step for several independent sequences at once (continuous batching): each entry
// appends one token to its own KV cache. Every weight matrix is read once for all rows
// (kernels::matmul_rowwise), attention runs per sequence against its own cache, and each row's
// logits are bit-identical to Decoder::eval of that token alone on that cache.
class BatchDecoder {
 public:
  BatchDecoder(const Model& model, ThreadPool& pool);
  // caches[i] receives tokens[i] at its n_past; logits_out: [n][n_vocab]. Throws ug::Error (cache
  // full, id out of range) before anything is written.
  void step(const std::vector<KvCache*>& caches, const std::vector<int32_t>& tokens,
            std::vector<float>* logits_out);

 private:
  struct Scratch;
  void layer_forward(int il, const std::vector<KvCache*>& caches);

  const Model& model_;
  ThreadPool& pool_;
  std::shared_ptr<Scratch> scratch_;
};

}  // namespace ug::gemma4
