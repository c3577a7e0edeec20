// Per-layer K/V storage (spec §1.5). Sliding layers keep a ring of window + n_ubatch positions (the
// extra room lets one prompt chunk write all its keys before attending, and allows rolling back a
// few positions for speculative decoding); full layers grow with the context. Memory is reserved
// virtually and committed by the OS page by page as positions are written, so a large --ctx costs
// only what is used.
#pragma once

#include <cstdint>
#include <vector>

#include "format/tensor_type.h"
#include "model/gemma4/config.h"

namespace ug::gemma4 {

struct KvLayer {
  bool sliding = false;
  TensorType type = TensorType::F16;  // storage of this layer's rows
  int capacity = 0;                   // positions held (ring size for sliding layers)
  int n_kv_head = 0;
  int head_dim = 0;
  int64_t head_bytes = 0;  // bytes of one head's row in the cache type
  int64_t pos_bytes = 0;   // bytes per position (all heads)
  uint8_t* k = nullptr;
  uint8_t* v = nullptr;
};

class KvCache {
 public:
  // `global_type` stores the full-attention layers (which grow with the context), `type` the
  // sliding ones; the two-argument form uses one type for both.
  KvCache(const Config& config, int n_ctx, int n_ubatch, TensorType type, TensorType global_type);
  KvCache(const Config& config, int n_ctx, int n_ubatch, TensorType type)
      : KvCache(config, n_ctx, n_ubatch, type, type) {}
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  TensorType type() const { return type_; }  // of the sliding layers (see KvLayer::type)
  int n_ctx() const { return n_ctx_; }
  int n_past() const { return n_past_; }
  const KvLayer& layer(int i) const { return layers_[size_t(i)]; }

  // Slot of position `pos` in layer `i`.
  int slot(int i, int pos) const {
    const KvLayer& l = layers_[size_t(i)];
    return l.sliding ? pos % l.capacity : pos;
  }
  uint8_t* k_row(int i, int pos, int head) {
    const KvLayer& l = layers_[size_t(i)];
    return l.k + int64_t(slot(i, pos)) * l.pos_bytes + int64_t(head) * l.head_bytes;
  }
  uint8_t* v_row(int i, int pos, int head) {
    const KvLayer& l = layers_[size_t(i)];
    return l.v + int64_t(slot(i, pos)) * l.pos_bytes + int64_t(head) * l.head_bytes;
  }
  const uint8_t* k_row(int i, int pos, int head) const {
    return const_cast<KvCache*>(this)->k_row(i, pos, head);
  }
  const uint8_t* v_row(int i, int pos, int head) const {
    return const_cast<KvCache*>(this)->v_row(i, pos, head);
  }

  // Marks positions [0, n) valid; used by the forward pass after writing a chunk.
  void set_n_past(int n) { n_past_ = n; }
  // Forgets positions >= n. Rolling back is possible as long as sliding rings still hold the window
  // before n: at most `rollback_limit()` positions. Throws ug::Error otherwise.
  void truncate(int n);
  int rollback_limit() const { return ring_slack_; }
  void clear() { n_past_ = 0; }
  // Commits every reserved page now, so the memory is taken at start-up (where a shortage can be
  // reported) rather than when a long conversation reaches it.
  void commit();

  // Bytes reserved (virtual) and bytes for `n_tokens` positions (what is committed when used).
  uint64_t reserved_bytes() const;
  static uint64_t bytes_for(const Config& config, int n_ctx, int n_ubatch, TensorType type,
                            TensorType global_type);
  static uint64_t bytes_for(const Config& config, int n_ctx, int n_ubatch, TensorType type) {
    return bytes_for(config, n_ctx, n_ubatch, type, type);
  }

 private:
  TensorType type_;
  int n_ctx_;
  int n_past_ = 0;
  int ring_slack_ = 0;
  std::vector<KvLayer> layers_;
  std::vector<std::pair<void*, size_t>> mappings_;
};

}  // namespace ug::gemma4
