#include "model/gemma4/decoder.h"

#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "model/gemma4/attention.h"
#include "model/gemma4/rope.h"
#include "util/error.h"

namespace ug::gemma4 {

// Activations for one chunk of up to n_ubatch positions, allocated once.
struct Decoder::Scratch {
  std::vector<float> x;     // residual stream [n][n_embd]
  std::vector<float> a;     // normed input [n][n_embd]
  std::vector<float> q;     // [n][q_dim]
  std::vector<float> k;     // [n][kv_dim]
  std::vector<float> v;     // [n][kv_dim]
  std::vector<float> attn;  // [n][q_dim]
  std::vector<float> o;     // [n][n_embd]
  std::vector<float> gate;  // [n][n_ff]
  std::vector<float> up;    // [n][n_ff]
  std::vector<float> rope;  // [n][head_dim/2][cos, sin] for the current layer's RoPE
};

Decoder::Decoder(const Model& model, const DecoderOptions& options, ThreadPool& pool)
    : model_(model),
      options_(options),
      pool_(pool),
      cache_(model.config, options.n_ctx, std::max(1, std::min(options.n_ubatch, options.n_ctx)),
             options.cache_type, options.global_cache_type.value_or(options.cache_type)),
      scratch_(std::make_shared<Scratch>()) {
  if (options_.n_ubatch <= 0) throw Error("batch size must be > 0");
  options_.n_ubatch = std::min(options_.n_ubatch, options_.n_ctx);
  const Config& c = model.config;
  const size_t n = size_t(options_.n_ubatch);
  Scratch& s = *scratch_;
  s.x.resize(n * size_t(c.n_embd));
  s.a.resize(n * size_t(c.n_embd));
  s.o.resize(n * size_t(c.n_embd));
  s.q.resize(n * size_t(c.max_q_dim()));
  s.attn.resize(n * size_t(c.max_q_dim()));
  s.k.resize(n * size_t(c.max_kv_dim()));
  s.v.resize(n * size_t(c.max_kv_dim()));
  s.gate.resize(n * size_t(c.max_ff()));
  s.up.resize(n * size_t(c.max_ff()));
  s.rope.resize(n * size_t(c.max_head_dim()));
  if (options_.commit_kv) cache_.commit();
}

uint64_t Decoder::scratch_bytes(const Config& c, int n_ubatch) {
  const uint64_t per_position = 3 * uint64_t(c.n_embd) + 2 * uint64_t(c.max_q_dim()) +
                                2 * uint64_t(c.max_kv_dim()) + 2 * uint64_t(c.max_ff()) +
                                uint64_t(c.max_head_dim());
  return sizeof(float) * uint64_t(n_ubatch) * per_position;
}

void Decoder::eval_tokens(const std::vector<int32_t>& tokens, Outputs outputs, Output* out) {
  Input in;
  in.tokens = tokens;
  eval(in, outputs, out);
}

void Decoder::eval(const Input& input, Outputs outputs, Output* out) {
  const Config& c = model_.config;
  const int n = int(input.tokens.size());
  if (n == 0) throw Error("empty input");
  if (int64_t(cache_.n_past()) + n > cache_.n_ctx()) {
    throw Error("context full: " + std::to_string(cache_.n_past()) + " + " + std::to_string(n) +
                " tokens exceed the context length " + std::to_string(cache_.n_ctx()) +
                " (raise --ctx)");
  }
  size_t n_embd_rows = 0;
  for (int32_t t : input.tokens) {
    if (t < 0) {
      ++n_embd_rows;
    } else if (t >= c.n_vocab) {
      throw Error("token id " + std::to_string(t) + " out of range (vocabulary " +
                  std::to_string(c.n_vocab) + ")");
    }
  }
  if (input.embeddings.size() != n_embd_rows * size_t(c.n_embd)) {
    throw Error("input has " + std::to_string(n_embd_rows) + " embedding positions but " +
                std::to_string(input.embeddings.size()) + " embedding values");
  }
  if (!input.block.empty() && input.block.size() != input.tokens.size()) {
    throw Error("input block ids do not match the number of positions");
  }

  out->n_rows = 0;
  out->logits.clear();
  out->hidden.clear();
  // Chunks of n_ubatch positions; a chunk boundary never falls inside a bidirectional block.
  size_t embd_row = 0;
  int begin = 0;
  while (begin < n) {
    int end = std::min(n, begin + options_.n_ubatch);
    if (!input.block.empty() && end < n && input.block[size_t(end)] >= 0 &&
        input.block[size_t(end)] == input.block[size_t(end - 1)]) {
      int block_start = end - 1;
      while (block_start > begin &&
             input.block[size_t(block_start - 1)] == input.block[size_t(end)]) {
        --block_start;
      }
      if (block_start == begin) {
        throw Error("a bidirectional block of more than " + std::to_string(options_.n_ubatch) +
                    " positions does not fit one batch (raise --ubatch)");
      }
      end = block_start;
    }
    const Outputs chunk_outputs =
        outputs == Outputs::kAll
            ? Outputs::kAll
            : (end == n && outputs == Outputs::kLast ? Outputs::kLast : Outputs::kNone);
    eval_chunk(input, begin, end, embd_row, chunk_outputs, out);
    for (int i = begin; i < end; ++i) embd_row += input.tokens[size_t(i)] < 0 ? 1 : 0;
    begin = end;
    if (progress_) progress_(end, n);
  }
}

void Decoder::eval_chunk(const Input& input, int begin, int end, size_t embd_row, Outputs outputs,
                         Output* out) {
  const Config& c = model_.config;
  Scratch& s = *scratch_;
  const int n = end - begin;
  const int pos0 = cache_.n_past();
  const int64_t H = c.n_embd;

  // Input embeddings: text tokens are scaled by sqrt(n_embd); multimodal rows are used as given.
  for (int t = 0; t < n; ++t) {
    float* x = s.x.data() + t * H;
    const int32_t tok = input.tokens[size_t(begin + t)];
    if (tok >= 0) {
      const auto* row = static_cast<const uint8_t*>(model_.token_embd.data) +
                        int64_t(tok) * model_.token_embd.row_bytes;
      kernels::dequantize_row(model_.token_embd.type, row, x, H);
      kernels::scale(x, c.embed_scale, H);
    } else {
      std::copy_n(input.embeddings.data() + embd_row * size_t(H), H, x);
      ++embd_row;
    }
  }

  // Last position of each query's bidirectional block (within this chunk), or -1.
  std::vector<int32_t> block_end;
  if (!input.block.empty()) {
    block_end.assign(size_t(n), -1);
    for (int t = n - 1; t >= 0; --t) {
      const int32_t b = input.block[size_t(begin + t)];
      if (b < 0) continue;
      const bool continues = t + 1 < n && input.block[size_t(begin + t + 1)] == b;
      block_end[size_t(t)] = continues ? block_end[size_t(t + 1)] : pos0 + t;
    }
  }

  for (int il = 0; il < c.n_layer; ++il) {
    layer_forward(il, n, pos0, block_end.empty() ? nullptr : block_end.data());
  }
  cache_.set_n_past(pos0 + n);

  if (outputs == Outputs::kNone) return;
  // Final norm, tied LM head, softcap.
  const int first = outputs == Outputs::kAll ? 0 : n - 1;
  const int rows = n - first;
  const size_t old_rows = size_t(out->n_rows);
  out->hidden.resize((old_rows + size_t(rows)) * size_t(H));
  out->logits.resize((old_rows + size_t(rows)) * size_t(c.n_vocab));
  float* hidden = out->hidden.data() + old_rows * size_t(H);
  for (int t = 0; t < rows; ++t) {
    kernels::rms_norm(s.x.data() + (first + t) * H, model_.output_norm.data(), hidden + t * H, H,
                      c.rms_eps);
  }
  float* logits = out->logits.data() + old_rows * size_t(c.n_vocab);
  kernels::matmul(model_.token_embd, hidden, H, rows, logits, c.n_vocab, pool_);
  if (c.final_softcap > 0) kernels::softcap(logits, c.final_softcap, int64_t(rows) * c.n_vocab);
  out->n_rows += rows;
}

// One decoder layer, in the order of spec §1.3.
void Decoder::layer_forward(int il, int n, int pos0, const int32_t* block_end) {
  const Config& c = model_.config;
  const LayerConfig& lc = c.layers[size_t(il)];
  const LayerWeights& w = model_.layers[size_t(il)];
  Scratch& s = *scratch_;
  const int64_t H = c.n_embd;
  const int hd = lc.head_dim;
  const int64_t q_dim = int64_t(lc.n_head) * hd;
  const int64_t kv_dim = int64_t(lc.n_kv_head) * hd;
  const float eps = c.rms_eps;

  // 1. a = RMSNorm_input(x)
  for (int t = 0; t < n; ++t) {
    kernels::rms_norm(s.x.data() + t * H, w.attn_norm.data(), s.a.data() + t * H, H, eps);
  }
  // 2. q = RoPE(RMSNorm_q(a·Wq)) per head
  kernels::matmul(w.attn_q, s.a.data(), H, n, s.q.data(), q_dim, pool_);
  // 3. k = a·Wk; v = a·Wv, or the raw k projection on K=V layers (taken before k_norm and RoPE)
  kernels::matmul(w.attn_k, s.a.data(), H, n, s.k.data(), kv_dim, pool_);
  if (lc.has_v) {
    kernels::matmul(w.attn_v, s.a.data(), H, n, s.v.data(), kv_dim, pool_);
  } else {
    std::copy_n(s.k.data(), size_t(n) * size_t(kv_dim), s.v.data());
  }
  for (int t = 0; t < n; ++t) {
    const int pos = pos0 + t;
    float* cs = s.rope.data() + int64_t(t) * hd;
    rope_table(pos, w.rope_inv_freq, cs);
    for (int h = 0; h < lc.n_head; ++h) {
      float* qh = s.q.data() + t * q_dim + h * hd;
      kernels::rms_norm(qh, w.attn_q_norm.data(), qh, hd, eps);
      rope(qh, hd, cs);
    }
    // 4. k = RoPE(RMSNorm_k(k)); v = RMSNorm without weight (no RoPE)
    for (int g = 0; g < lc.n_kv_head; ++g) {
      float* kh = s.k.data() + t * kv_dim + g * hd;
      float* vh = s.v.data() + t * kv_dim + g * hd;
      kernels::rms_norm(kh, w.attn_k_norm.data(), kh, hd, eps);
      rope(kh, hd, cs);
      kernels::rms_norm(vh, nullptr, vh, hd, eps);
      // 5. append to the KV cache
      kernels::quantize_row(cache_.layer(il).type, kh, cache_.k_row(il, pos, g), hd);
      kernels::quantize_row(cache_.layer(il).type, vh, cache_.v_row(il, pos, g), hd);
    }
  }
  // 6. o = softmax(q·kᵀ + mask)·v
  attend(cache_, il, lc, c.sliding_window, s.q.data(), pos0, n, block_end, s.attn.data(), pool_);
  // 7.-8. x = x + RMSNorm_post_attn(o·Wo)
  kernels::matmul(w.attn_output, s.attn.data(), q_dim, n, s.o.data(), H, pool_);
  for (int t = 0; t < n; ++t) {
    float* o = s.o.data() + t * H;
    kernels::rms_norm(o, w.post_attention_norm.data(), o, H, eps);
    kernels::add(o, s.x.data() + t * H, H);
  }
  // 9. m = Wdown(gelu_tanh(Wgate·f) ⊙ Wup·f), f = RMSNorm_pre_ffw(x)
  const int64_t ff = lc.n_ff;
  for (int t = 0; t < n; ++t) {
    kernels::rms_norm(s.x.data() + t * H, w.ffn_norm.data(), s.a.data() + t * H, H, eps);
  }
  kernels::matmul(w.ffn_gate, s.a.data(), H, n, s.gate.data(), ff, pool_);
  kernels::matmul(w.ffn_up, s.a.data(), H, n, s.up.data(), ff, pool_);
  kernels::gelu_tanh_mul(s.gate.data(), s.up.data(), s.gate.data(), int64_t(n) * ff);
  kernels::matmul(w.ffn_down, s.gate.data(), ff, n, s.o.data(), H, pool_);
  // 10.-11. x = (x + RMSNorm_post_ffw(m)) * layer_scalar
  for (int t = 0; t < n; ++t) {
    float* m = s.o.data() + t * H;
    float* x = s.x.data() + t * H;
    kernels::rms_norm(m, w.post_ffw_norm.data(), m, H, eps);
    kernels::add(m, x, H);
    kernels::scale(x, w.output_scale, H);
  }
}

// ------------------------------------------------------------------ batched decode

struct BatchDecoder::Scratch {
  int rows = 0;
  std::vector<float> x, a, q, k, v, attn, o, gate, up, rope, hidden;
  void reserve(const Config& c, int n) {
    if (n <= rows) return;
    rows = n;
    const size_t N = size_t(n);
    x.resize(N * size_t(c.n_embd));
    a.resize(N * size_t(c.n_embd));
    o.resize(N * size_t(c.n_embd));
    hidden.resize(N * size_t(c.n_embd));
    q.resize(N * size_t(c.max_q_dim()));
    attn.resize(N * size_t(c.max_q_dim()));
    k.resize(N * size_t(c.max_kv_dim()));
    v.resize(N * size_t(c.max_kv_dim()));
    gate.resize(N * size_t(c.max_ff()));
    up.resize(N * size_t(c.max_ff()));
    rope.resize(N * size_t(c.max_head_dim()));
  }
};

BatchDecoder::BatchDecoder(const Model& model, ThreadPool& pool)
    : model_(model), pool_(pool), scratch_(std::make_shared<Scratch>()) {}

void BatchDecoder::step(const std::vector<KvCache*>& caches, const std::vector<int32_t>& tokens,
                        std::vector<float>* logits_out) {
  const Config& c = model_.config;
  const int n = int(tokens.size());
  if (n == 0 || caches.size() != tokens.size()) throw Error("batch step: caches and tokens differ");
  for (int t = 0; t < n; ++t) {
    if (caches[size_t(t)]->n_past() + 1 > caches[size_t(t)]->n_ctx()) {
      throw Error("context full: " + std::to_string(caches[size_t(t)]->n_past()) +
                  " tokens fill the context length");
    }
    if (tokens[size_t(t)] < 0 || tokens[size_t(t)] >= c.n_vocab) {
      throw Error("token id " + std::to_string(tokens[size_t(t)]) + " out of range");
    }
  }
  Scratch& s = *scratch_;
  s.reserve(c, n);
  const int64_t H = c.n_embd;
  for (int t = 0; t < n; ++t) {
    float* x = s.x.data() + t * H;
    const auto* row = static_cast<const uint8_t*>(model_.token_embd.data) +
                      int64_t(tokens[size_t(t)]) * model_.token_embd.row_bytes;
    kernels::dequantize_row(model_.token_embd.type, row, x, H);
    kernels::scale(x, c.embed_scale, H);
  }
  for (int il = 0; il < c.n_layer; ++il) layer_forward(il, caches);
  for (KvCache* cache : caches) cache->set_n_past(cache->n_past() + 1);
  for (int t = 0; t < n; ++t) {
    kernels::rms_norm(s.x.data() + t * H, model_.output_norm.data(), s.hidden.data() + t * H, H,
                      c.rms_eps);
  }
  logits_out->resize(size_t(n) * size_t(c.n_vocab));
  kernels::matmul_rowwise(model_.token_embd, s.hidden.data(), H, n, logits_out->data(), c.n_vocab,
                          pool_);
  if (c.final_softcap > 0) {
    kernels::softcap(logits_out->data(), c.final_softcap, int64_t(n) * c.n_vocab);
  }
}

// Decoder::layer_forward with n = 1 per sequence, the matmuls shared across sequences.
void BatchDecoder::layer_forward(int il, const std::vector<KvCache*>& caches) {
  const Config& c = model_.config;
  const LayerConfig& lc = c.layers[size_t(il)];
  const LayerWeights& w = model_.layers[size_t(il)];
  Scratch& s = *scratch_;
  const int n = int(caches.size());
  const int64_t H = c.n_embd;
  const int hd = lc.head_dim;
  const int64_t q_dim = int64_t(lc.n_head) * hd;
  const int64_t kv_dim = int64_t(lc.n_kv_head) * hd;
  const float eps = c.rms_eps;

  for (int t = 0; t < n; ++t) {
    kernels::rms_norm(s.x.data() + t * H, w.attn_norm.data(), s.a.data() + t * H, H, eps);
  }
  kernels::matmul_rowwise(w.attn_q, s.a.data(), H, n, s.q.data(), q_dim, pool_);
  kernels::matmul_rowwise(w.attn_k, s.a.data(), H, n, s.k.data(), kv_dim, pool_);
  if (lc.has_v) {
    kernels::matmul_rowwise(w.attn_v, s.a.data(), H, n, s.v.data(), kv_dim, pool_);
  } else {
    std::copy_n(s.k.data(), size_t(n) * size_t(kv_dim), s.v.data());
  }
  for (int t = 0; t < n; ++t) {
    KvCache& cache = *caches[size_t(t)];
    const int pos = cache.n_past();
    float* cs = s.rope.data() + int64_t(t) * hd;
    rope_table(pos, w.rope_inv_freq, cs);
    for (int h = 0; h < lc.n_head; ++h) {
      float* qh = s.q.data() + t * q_dim + h * hd;
      kernels::rms_norm(qh, w.attn_q_norm.data(), qh, hd, eps);
      rope(qh, hd, cs);
    }
    for (int g = 0; g < lc.n_kv_head; ++g) {
      float* kh = s.k.data() + t * kv_dim + g * hd;
      float* vh = s.v.data() + t * kv_dim + g * hd;
      kernels::rms_norm(kh, w.attn_k_norm.data(), kh, hd, eps);
      rope(kh, hd, cs);
      kernels::rms_norm(vh, nullptr, vh, hd, eps);
      kernels::quantize_row(cache.layer(il).type, kh, cache.k_row(il, pos, g), hd);
      kernels::quantize_row(cache.layer(il).type, vh, cache.v_row(il, pos, g), hd);
    }
    attend(cache, il, lc, c.sliding_window, s.q.data() + t * q_dim, pos, 1, nullptr,
           s.attn.data() + t * q_dim, pool_);
  }
  kernels::matmul_rowwise(w.attn_output, s.attn.data(), q_dim, n, s.o.data(), H, pool_);
  for (int t = 0; t < n; ++t) {
    float* o = s.o.data() + t * H;
    kernels::rms_norm(o, w.post_attention_norm.data(), o, H, eps);
    kernels::add(o, s.x.data() + t * H, H);
  }
  const int64_t ff = lc.n_ff;
  for (int t = 0; t < n; ++t) {
    kernels::rms_norm(s.x.data() + t * H, w.ffn_norm.data(), s.a.data() + t * H, H, eps);
  }
  kernels::matmul_rowwise(w.ffn_gate, s.a.data(), H, n, s.gate.data(), ff, pool_);
  kernels::matmul_rowwise(w.ffn_up, s.a.data(), H, n, s.up.data(), ff, pool_);
  kernels::gelu_tanh_mul(s.gate.data(), s.up.data(), s.gate.data(), int64_t(n) * ff);
  kernels::matmul_rowwise(w.ffn_down, s.gate.data(), ff, n, s.o.data(), H, pool_);
  for (int t = 0; t < n; ++t) {
    float* m = s.o.data() + t * H;
    float* x = s.x.data() + t * H;
    kernels::rms_norm(m, w.post_ffw_norm.data(), m, H, eps);
    kernels::add(m, x, H);
    kernels::scale(x, w.output_scale, H);
  }
}

}  // namespace ug::gemma4
