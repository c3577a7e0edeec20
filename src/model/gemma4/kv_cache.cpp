#include "model/gemma4/kv_cache.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/error.h"

namespace ug::gemma4 {

namespace {
int layer_capacity(const LayerConfig& l, int window, int n_ctx, int n_ubatch) {
  return l.sliding ? std::min(n_ctx, window + n_ubatch) : n_ctx;
}
}  // namespace

KvCache::KvCache(const Config& config, int n_ctx, int n_ubatch, TensorType type,
                 TensorType global_type)
    : type_(type), n_ctx_(n_ctx) {
  for (TensorType t : {type, global_type}) {
    if (t != TensorType::F32 && t != TensorType::F16 && t != TensorType::BF16 &&
        t != TensorType::Q8_0) {
      throw Error("KV cache type " + tensor_type_name(t) +
                  " is not supported (f32, f16, bf16, q8_0)");
    }
  }
  if (n_ctx <= 0) throw Error("context length " + std::to_string(n_ctx) + " must be > 0");
  // A ring that can hold the whole context never wraps, so any rollback is possible.
  ring_slack_ = config.sliding_window + n_ubatch >= n_ctx ? n_ctx : n_ubatch;
  layers_.resize(size_t(config.n_layer));
  for (int i = 0; i < config.n_layer; ++i) {
    const LayerConfig& lc = config.layers[size_t(i)];
    KvLayer& l = layers_[size_t(i)];
    l.sliding = lc.sliding;
    l.type = lc.sliding ? type : global_type;
    l.capacity = layer_capacity(lc, config.sliding_window, n_ctx, n_ubatch);
    l.n_kv_head = lc.n_kv_head;
    l.head_dim = lc.head_dim;
    l.head_bytes = type_row_bytes(l.type, lc.head_dim);
    l.pos_bytes = l.head_bytes * lc.n_kv_head;
    const size_t bytes = size_t(l.pos_bytes) * size_t(l.capacity);
    // Anonymous private mapping: pages are committed on first write, so an unused tail costs
    // nothing.
    void* k = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (k == MAP_FAILED) {
      throw Error("KV cache: cannot reserve " + std::to_string(bytes) + " bytes for layer " +
                  std::to_string(i) + ": " + std::strerror(errno));
    }
    mappings_.emplace_back(k, bytes);
    void* v = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (v == MAP_FAILED) {
      throw Error("KV cache: cannot reserve " + std::to_string(bytes) + " bytes for layer " +
                  std::to_string(i) + ": " + std::strerror(errno));
    }
    mappings_.emplace_back(v, bytes);
    l.k = static_cast<uint8_t*>(k);
    l.v = static_cast<uint8_t*>(v);
  }
}

KvCache::~KvCache() {
  for (auto& [p, n] : mappings_) munmap(p, n);
}

void KvCache::truncate(int n) {
  if (n < 0 || n > n_past_) {
    throw Error("KV cache: cannot truncate to " + std::to_string(n) + " (holds " +
                std::to_string(n_past_) + " positions)");
  }
  if (n_past_ - n > ring_slack_ && n > 0) {
    throw Error("KV cache: cannot roll back " + std::to_string(n_past_ - n) +
                " positions (sliding rings keep " + std::to_string(ring_slack_) + " spare)");
  }
  n_past_ = n;
}

void KvCache::commit() {
  const long page = sysconf(_SC_PAGESIZE);
  for (auto& [p, n] : mappings_) {
#ifdef MADV_POPULATE_WRITE
    if (madvise(p, n, MADV_POPULATE_WRITE) == 0) continue;
#endif
    auto* bytes = static_cast<volatile uint8_t*>(p);
    for (size_t off = 0; off < n; off += size_t(page)) bytes[off] = 0;
  }
}

uint64_t KvCache::reserved_bytes() const {
  uint64_t total = 0;
  for (const auto& m : mappings_) total += m.second;
  return total;
}

uint64_t KvCache::bytes_for(const Config& config, int n_ctx, int n_ubatch, TensorType type,
                            TensorType global_type) {
  uint64_t total = 0;
  for (const auto& lc : config.layers) {
    const TensorType t = lc.sliding ? type : global_type;
    const uint64_t per_pos = uint64_t(type_row_bytes(t, lc.head_dim)) * uint64_t(lc.n_kv_head);
    total += 2 * per_pos * uint64_t(layer_capacity(lc, config.sliding_window, n_ctx, n_ubatch));
  }
  return total;
}

}  // namespace ug::gemma4
