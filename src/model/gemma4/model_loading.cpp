#include "model/gemma4/model_loading.h"

#include <cmath>

#include "util/error.h"

namespace ug::gemma4 {

namespace {

std::string shape_str(const std::vector<int64_t>& ne) {
  std::string s = "{";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "}";
}

TensorRef require(const TensorLookup& lookup, const std::string& name, const std::string& source) {
  auto t = lookup(name);
  if (!t) throw Error(source + ": tensor '" + name + "': missing");
  if (!t->supported) {
    throw Error(t->source + ": tensor '" + name + "': tensor type " + t->type_name +
                " is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)");
  }
  return *t;
}

void check_shape(const TensorRef& t, const std::vector<int64_t>& want) {
  if (t.ne != want) {
    throw Error(t.source + ": tensor '" + t.name + "': shape " + shape_str(t.ne) + ", expected " +
                shape_str(want));
  }
}

kernels::Matrix matrix(const TensorLookup& lookup, const std::string& name, int64_t cols,
                       int64_t rows, const std::string& source) {
  TensorRef t = require(lookup, name, source);
  check_shape(t, {cols, rows});
  if (cols % type_block_elems(t.type) != 0) {
    throw Error(t.source + ": tensor '" + name + "': row length " + std::to_string(cols) +
                " is not a multiple of the " + t.type_name + " block size");
  }
  kernels::Matrix m;
  m.type = t.type;
  m.data = t.data;
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = type_row_bytes(t.type, cols);
  return m;
}

}  // namespace

TensorRef require_tensor(const TensorLookup& lookup, const std::string& name,
                         const std::string& source) {
  return require(lookup, name, source);
}

kernels::Matrix load_matrix(const TensorLookup& lookup, const std::string& name, int64_t cols,
                            int64_t rows, const std::string& source) {
  return matrix(lookup, name, cols, rows, source);
}

void validate_config(const Config& c, const std::string& source) {
  if (c.sliding_window <= 0) {
    throw Error(source + ": sliding window " + std::to_string(c.sliding_window) + " must be > 0");
  }
  for (int i = 0; i < c.n_layer; ++i) {
    const LayerConfig& l = c.layers[size_t(i)];
    const std::string where = source + ": layer " + std::to_string(i) + ": ";
    if (l.n_head <= 0 || l.n_kv_head <= 0 || l.n_head % l.n_kv_head != 0 || l.n_head > 1024) {
      throw Error(where + "head counts " + std::to_string(l.n_head) + "/" +
                  std::to_string(l.n_kv_head) +
                  " are invalid (q heads must be a multiple of KV heads)");
    }
    if (l.head_dim <= 0 || l.head_dim % 32 != 0 || l.head_dim > 4096) {
      throw Error(where + "head dim " + std::to_string(l.head_dim) +
                  " is invalid (must be a positive multiple of 32)");
    }
    if (l.rope_dims != l.head_dim) {
      throw Error(
          where + "rope dimension count " + std::to_string(l.rope_dims) +
          " differs from head dim " + std::to_string(l.head_dim) +
          " (Gemma 4 rotates whole heads; partial rotation is expressed by frequency factors)");
    }
    if (l.n_ff <= 0 || l.n_ff > (1 << 20)) {
      throw Error(where + "feed-forward length " + std::to_string(l.n_ff) + " is invalid");
    }
    if (!(l.rope_base > 0)) throw Error(where + "RoPE frequency base must be > 0");
  }
}

std::vector<float> load_vector(const TensorRef& t, int64_t expected_len) {
  int64_t n = 1;
  for (int64_t d : t.ne) n *= d;
  if (expected_len >= 0 && (t.ne.size() != 1 || n != expected_len)) {
    throw Error(t.source + ": tensor '" + t.name + "': shape " + shape_str(t.ne) + ", expected {" +
                std::to_string(expected_len) + "}");
  }
  if (t.type != TensorType::F32 && t.type != TensorType::F16 && t.type != TensorType::BF16) {
    throw Error(t.source + ": tensor '" + t.name + "': type " + t.type_name +
                " not allowed for a vector (F32, F16 or BF16)");
  }
  std::vector<float> out(static_cast<size_t>(n));
  kernels::dequantize_row(t.type, t.data, out.data(), n);
  return out;
}

std::vector<float> rope_inv_freq(const LayerConfig& l, const std::vector<float>& factors) {
  const int half = l.head_dim / 2;
  std::vector<float> inv(size_t(half), 0.0f);
  for (int j = 0; j < half; ++j) {
    float f = float(std::pow(double(l.rope_base), -2.0 * j / double(l.rope_dims)));
    if (!factors.empty()) f /= factors[size_t(j)];
    inv[size_t(j)] = f;
  }
  return inv;
}

void fill_weights(Model& model, const TensorLookup& lookup, const WeightNames& names) {
  Config& c = model.config;
  const std::string& src = model.path;

  TensorRef embd = require(lookup, names.token_embd, src);
  if (embd.ne.size() != 2 || embd.ne[0] != c.n_embd || embd.ne[1] <= 0) {
    throw Error(embd.source + ": tensor '" + embd.name + "': shape " + shape_str(embd.ne) +
                ", expected {" + std::to_string(c.n_embd) + ", n_vocab}");
  }
  c.n_vocab = int(embd.ne[1]);
  model.token_embd = matrix(lookup, names.token_embd, c.n_embd, c.n_vocab, src);
  model.output_norm = load_vector(require(lookup, names.output_norm, src), c.n_embd);
  model.weight_bytes = uint64_t(model.token_embd.row_bytes) * uint64_t(c.n_vocab);

  model.layers.resize(size_t(c.n_layer));
  for (int i = 0; i < c.n_layer; ++i) {
    const LayerConfig& lc = c.layers[size_t(i)];
    LayerWeights& w = model.layers[size_t(i)];
    auto name = [&](LayerTensor t) { return names.layer(i, t); };
    auto vec = [&](LayerTensor t, int64_t len) {
      return load_vector(require(lookup, name(t), src), len);
    };
    const int64_t q_dim = int64_t(lc.n_head) * lc.head_dim;
    const int64_t kv_dim = int64_t(lc.n_kv_head) * lc.head_dim;
    w.attn_q = matrix(lookup, name(LayerTensor::kQ), c.n_embd, q_dim, src);
    w.attn_k = matrix(lookup, name(LayerTensor::kK), c.n_embd, kv_dim, src);
    if (lc.has_v) w.attn_v = matrix(lookup, name(LayerTensor::kV), c.n_embd, kv_dim, src);
    w.attn_output = matrix(lookup, name(LayerTensor::kO), q_dim, c.n_embd, src);
    w.ffn_gate = matrix(lookup, name(LayerTensor::kGate), c.n_embd, lc.n_ff, src);
    w.ffn_up = matrix(lookup, name(LayerTensor::kUp), c.n_embd, lc.n_ff, src);
    w.ffn_down = matrix(lookup, name(LayerTensor::kDown), lc.n_ff, c.n_embd, src);
    w.attn_norm = vec(LayerTensor::kAttnNorm, c.n_embd);
    w.attn_q_norm = vec(LayerTensor::kQNorm, lc.head_dim);
    w.attn_k_norm = vec(LayerTensor::kKNorm, lc.head_dim);
    w.post_attention_norm = vec(LayerTensor::kPostAttnNorm, c.n_embd);
    w.ffn_norm = vec(LayerTensor::kFfnNorm, c.n_embd);
    w.post_ffw_norm = vec(LayerTensor::kPostFfwNorm, c.n_embd);
    w.output_scale = vec(LayerTensor::kOutputScale, 1)[0];
    for (const kernels::Matrix* m :
         {&w.attn_q, &w.attn_k, &w.attn_v, &w.attn_output, &w.ffn_gate, &w.ffn_up, &w.ffn_down}) {
      if (m->data) model.weight_bytes += uint64_t(m->row_bytes) * uint64_t(m->rows);
    }
  }
}

}  // namespace ug::gemma4
