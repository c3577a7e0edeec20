// Gemma 4 text-decoder hyperparameters, read from the model file (nothing size-specific is
// hard-coded).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ug::gemma4 {

// Per-layer attention geometry: Gemma 4 mixes sliding-window layers and full (global) layers with
// different head sizes, KV head counts and RoPE.
struct LayerConfig {
  bool sliding = true;
  int n_head = 0;
  int n_kv_head = 0;
  int head_dim = 0;
  int n_ff = 0;
  bool has_v = true;  // false on K=V (attention_k_eq_v) full layers: V is the raw K projection
  float rope_base = 0;
  int rope_dims = 0;  // rotated dims (NeoX halves over rope_dims); == head_dim on Gemma 4
  bool rope_freq_factors = false;  // full layers divide frequencies by rope_freqs.weight
};

struct Config {
  std::string name;
  int n_embd = 0;
  int n_layer = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;
  int sliding_window = 0;
  float rms_eps = 1e-6f;
  float final_softcap = 0;  // 0 = none
  float embed_scale = 1;    // sqrt(n_embd), applied to text-token embeddings only
  std::vector<LayerConfig> layers;

  int max_head_dim() const;
  int max_q_dim() const;   // max n_head * head_dim
  int max_kv_dim() const;  // max n_kv_head * head_dim
  int max_ff() const;
  int last_sliding_layer() const;  // -1 if none
  int last_full_layer() const;
};

}  // namespace ug::gemma4
