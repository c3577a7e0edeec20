#include "model/gemma4/drafter.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "model/gemma4/attention.h"
#include "model/gemma4/model_loading.h"
#include "model/gemma4/rope.h"
#include "util/error.h"

namespace ug::gemma4 {

namespace {

using nlohmann::json;

// A GGUF key stored either as a scalar or as a per-layer array.
std::vector<int64_t> per_layer_ints(const gguf::File& f, const std::string& key, int n_layer) {
  const gguf::Value* v = f.find(key);
  if (!v) throw Error(f.path() + ": metadata '" + key + "': missing");
  std::vector<int64_t> out;
  if (v->type == gguf::ValueType::ARRAY) {
    out = f.get_int_array(key);
    if (out.size() != size_t(n_layer)) {
      throw Error(f.path() + ": metadata '" + key + "': " + std::to_string(out.size()) +
                  " entries, expected block_count " + std::to_string(n_layer));
    }
  } else {
    out.assign(size_t(n_layer), f.get_int(key));
  }
  return out;
}

// Tensor names of one drafter layer in either format.
struct DrafterNames {
  std::string token_embd, output_norm, pre_projection, post_projection;
  std::function<std::string(int, LayerTensor)> layer;
};

// Loads weights common to both formats; model.config must be complete except n_vocab.
void fill_drafter_weights(DrafterModel& m, const TensorLookup& lookup, const DrafterNames& names,
                          const std::vector<std::vector<float>>& rope_factors) {
  Config& c = m.config;
  const std::string& src = m.path;
  TensorRef embd = require_tensor(lookup, names.token_embd, src);
  if (embd.ne.size() != 2 || embd.ne[0] != c.n_embd || embd.ne[1] <= 0 ||
      embd.ne[1] > (int64_t(1) << 24)) {
    throw Error(embd.source + ": tensor '" + embd.name + "': expected shape {" +
                std::to_string(c.n_embd) + ", n_vocab}");
  }
  c.n_vocab = int(embd.ne[1]);
  m.token_embd = load_matrix(lookup, names.token_embd, c.n_embd, c.n_vocab, src);
  m.output_norm = load_vector(require_tensor(lookup, names.output_norm, src), c.n_embd);
  m.pre_projection =
      load_matrix(lookup, names.pre_projection, 2 * int64_t(m.n_embd_target), c.n_embd, src);
  m.post_projection = load_matrix(lookup, names.post_projection, c.n_embd, m.n_embd_target, src);
  auto bytes = [](const kernels::Matrix& x) { return uint64_t(x.row_bytes) * uint64_t(x.rows); };
  m.weight_bytes = bytes(m.token_embd) + bytes(m.pre_projection) + bytes(m.post_projection);

  m.layers.resize(size_t(c.n_layer));
  for (int i = 0; i < c.n_layer; ++i) {
    const LayerConfig& lc = c.layers[size_t(i)];
    DrafterLayerWeights& w = m.layers[size_t(i)];
    auto name = [&](LayerTensor t) { return names.layer(i, t); };
    auto vec = [&](LayerTensor t, int64_t len) {
      return load_vector(require_tensor(lookup, name(t), src), len);
    };
    const int64_t q_dim = int64_t(lc.n_head) * lc.head_dim;
    w.attn_q = load_matrix(lookup, name(LayerTensor::kQ), c.n_embd, q_dim, src);
    w.attn_output = load_matrix(lookup, name(LayerTensor::kO), q_dim, c.n_embd, src);
    w.ffn_gate = load_matrix(lookup, name(LayerTensor::kGate), c.n_embd, lc.n_ff, src);
    w.ffn_up = load_matrix(lookup, name(LayerTensor::kUp), c.n_embd, lc.n_ff, src);
    w.ffn_down = load_matrix(lookup, name(LayerTensor::kDown), lc.n_ff, c.n_embd, src);
    w.attn_norm = vec(LayerTensor::kAttnNorm, c.n_embd);
    w.attn_q_norm = vec(LayerTensor::kQNorm, lc.head_dim);
    w.post_attention_norm = vec(LayerTensor::kPostAttnNorm, c.n_embd);
    w.ffn_norm = vec(LayerTensor::kFfnNorm, c.n_embd);
    w.post_ffw_norm = vec(LayerTensor::kPostFfwNorm, c.n_embd);
    w.output_scale = vec(LayerTensor::kOutputScale, 1)[0];
    w.rope_inv_freq = rope_inv_freq(lc, rope_factors[size_t(i)]);
    for (const kernels::Matrix* x :
         {&w.attn_q, &w.attn_output, &w.ffn_gate, &w.ffn_up, &w.ffn_down}) {
      m.weight_bytes += bytes(*x);
    }
  }
}

std::unique_ptr<DrafterModel> load_drafter_gguf(const std::string& path) {
  std::shared_ptr<gguf::File> file = gguf::File::open(path);
  const gguf::File& f = *file;
  const std::string arch = f.get_string("general.architecture");
  // A bundle (docs/bundle-gguf.md) is a `gemma4` file that also carries the drafter's
  // `gemma4-assistant.*` keys and its tensors under the "mtp." prefix.
  const bool bundle = arch == "gemma4" && f.has("gemma4-assistant.block_count");
  if (arch != "gemma4-assistant" && !bundle) {
    throw Error(path + ": metadata 'general.architecture': '" + arch +
                "' is not a Gemma 4 drafter (expected 'gemma4-assistant' or a bundle with one)");
  }
  const std::string tp = bundle ? kBundleDrafterPrefix : "";
  auto key = [](const char* k) { return std::string("gemma4-assistant.") + k; };
  auto m = std::make_unique<DrafterModel>();
  m->path = path;
  m->format = "gguf";
  m->gguf = file;
  Config& c = m->config;
  c.name = f.opt_string("general.name").value_or("");
  c.n_embd = int(f.get_int(key("embedding_length")));
  c.n_layer = int(f.get_int(key("block_count")));
  c.sliding_window = int(f.get_int(key("attention.sliding_window")));
  c.rms_eps = float(f.get_float(key("attention.layer_norm_rms_epsilon")));
  c.final_softcap = 0;  // present in the metadata but never applied to draft logits (oracle §0)
  m->n_embd_target = int(f.get_int(key("embedding_length_out")));
  if (c.n_embd <= 0 || c.n_embd > (1 << 16) || c.n_layer <= 0 || c.n_layer > 64 ||
      m->n_embd_target <= 0 || m->n_embd_target > (1 << 16)) {
    throw Error(path +
                ": metadata 'gemma4-assistant.embedding_length'/'block_count'/"
                "'embedding_length_out': implausible values");
  }
  for (const auto& t : f.tensors()) {
    if (bundle && t.name.rfind(tp, 0) != 0) continue;
    if (t.name.find("centroid") != std::string::npos ||
        t.name.find("token_ordering") != std::string::npos) {
      throw Error(path + ": tensor '" + t.name +
                  "': centroid-masked drafter heads (Gemma 4 E2B/E4B) are not supported");
    }
  }
  const auto n_head = per_layer_ints(f, key("attention.head_count"), c.n_layer);
  const auto n_kv = per_layer_ints(f, key("attention.head_count_kv"), c.n_layer);
  const auto n_ff = per_layer_ints(f, key("feed_forward_length"), c.n_layer);
  const auto pattern = f.get_int_array(key("attention.sliding_window_pattern"));
  if (pattern.size() != size_t(c.n_layer)) {
    throw Error(path + ": metadata 'gemma4-assistant.attention.sliding_window_pattern': " +
                std::to_string(pattern.size()) + " entries, expected " + std::to_string(c.n_layer));
  }
  const int hd_full = int(f.get_int(key("attention.key_length")));
  const int hd_swa = int(f.get_int(key("attention.key_length_swa")));
  const int rot_full = int(f.opt_int(key("rope.dimension_count")).value_or(hd_full));
  const int rot_swa = int(f.opt_int(key("rope.dimension_count_swa")).value_or(hd_swa));
  const float base_full = float(f.get_float(key("rope.freq_base")));
  const float base_swa = float(f.get_float(key("rope.freq_base_swa")));
  c.layers.resize(size_t(c.n_layer));
  for (int i = 0; i < c.n_layer; ++i) {
    LayerConfig& l = c.layers[size_t(i)];
    l.sliding = pattern[size_t(i)] != 0;
    l.n_head = int(n_head[size_t(i)]);
    l.n_kv_head = int(n_kv[size_t(i)]);
    l.n_ff = int(n_ff[size_t(i)]);
    l.head_dim = l.sliding ? hd_swa : hd_full;
    l.rope_dims = l.sliding ? rot_swa : rot_full;
    l.rope_base = l.sliding ? base_swa : base_full;
    l.rope_freq_factors = !l.sliding;
    l.has_v = false;
  }
  validate_config(c, path);

  TensorLookup lookup = [&f, &path](const std::string& name) -> std::optional<TensorRef> {
    const gguf::TensorInfo* t = f.find_tensor(name);
    if (!t) return std::nullopt;
    TensorRef r;
    r.name = name;
    r.raw_type = t->raw_type;
    r.type_name = tensor_type_name(t->raw_type);
    r.supported = tensor_type_supported(t->raw_type);
    r.type = t->type;
    r.ne.assign(t->ne.begin(), t->ne.begin() + t->n_dims);
    r.data = t->data;
    r.n_bytes = t->n_bytes;
    r.source = path;
    return r;
  };
  std::vector<float> freq_factors;
  if (auto rf = lookup(tp + "rope_freqs.weight")) freq_factors = load_vector(*rf, -1);
  std::vector<std::vector<float>> factors(size_t(c.n_layer));
  for (int i = 0; i < c.n_layer; ++i) {
    const LayerConfig& lc = c.layers[size_t(i)];
    if (!lc.rope_freq_factors || freq_factors.empty()) continue;
    if (freq_factors.size() != size_t(lc.head_dim / 2)) {
      throw Error(path + ": tensor 'rope_freqs.weight': " + std::to_string(freq_factors.size()) +
                  " entries, expected head_dim/2 = " + std::to_string(lc.head_dim / 2));
    }
    factors[size_t(i)] = freq_factors;
  }
  DrafterNames names;
  names.token_embd = tp + "token_embd.weight";
  names.output_norm = tp + "output_norm.weight";
  names.pre_projection = tp + kGgufDrafterPreProjection;
  names.post_projection = tp + kGgufDrafterPostProjection;
  names.layer = [tp](int i, LayerTensor t) {
    // No K/V projections or norms in a drafter.
    const bool kv = t == LayerTensor::kK || t == LayerTensor::kV || t == LayerTensor::kKNorm;
    return kv ? std::string() : tp + gguf_layer_tensor(i, t);
  };
  fill_drafter_weights(*m, lookup, names, factors);
  return m;
}

json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) throw Error(p.string() + ": cannot open");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw Error(p.string() + ": not a JSON object");
  return j;
}

int64_t json_int(const json& j, const std::string& file, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) throw Error(file + ": field '" + key + "': missing");
  if (!it->is_number_integer()) throw Error(file + ": field '" + key + "': expected an integer");
  return it->get<int64_t>();
}

double json_number_or(const json& j, const std::string& file, const char* key, double def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) throw Error(file + ": field '" + key + "': expected a number");
  return it->get<double>();
}

std::unique_ptr<DrafterModel> load_drafter_safetensors(const std::string& dir) {
  const std::filesystem::path config_path = std::filesystem::path(dir) / "config.json";
  if (!std::filesystem::exists(config_path)) {
    throw Error(dir + ": not a model folder (no config.json)");
  }
  const std::string file = config_path.string();
  const json root = read_json(config_path);
  const std::string arch = root.contains("architectures") && root["architectures"].is_array() &&
                                   !root["architectures"].empty() &&
                                   root["architectures"][0].is_string()
                               ? root["architectures"][0].get<std::string>()
                               : std::string();
  if (arch != "Gemma4UnifiedAssistantForCausalLM" && arch != "Gemma4AssistantForCausalLM") {
    throw Error(file + ": field 'architectures': '" + arch +
                "' is not a Gemma 4 drafter (expected Gemma4UnifiedAssistantForCausalLM)");
  }
  if (root.value("use_ordered_embeddings", false)) {
    throw Error(file +
                ": field 'use_ordered_embeddings': centroid-masked drafter heads (Gemma 4 "
                "E2B/E4B) are not supported");
  }
  const json& tc = root.contains("text_config") ? root["text_config"] : root;
  if (!tc.is_object()) throw Error(file + ": field 'text_config': expected an object");

  auto m = std::make_unique<DrafterModel>();
  m->path = dir;
  m->format = "safetensors";
  Config& c = m->config;
  c.name = root.value("_name_or_path", std::string());
  c.n_embd = int(json_int(tc, file, "hidden_size"));
  c.n_layer = int(json_int(tc, file, "num_hidden_layers"));
  c.sliding_window = int(json_int(tc, file, "sliding_window"));
  c.rms_eps = float(json_number_or(tc, file, "rms_norm_eps", 1e-6));
  m->n_embd_target = int(json_int(root, file, "backbone_hidden_size"));
  if (c.n_embd <= 0 || c.n_embd > (1 << 16) || c.n_layer <= 0 || c.n_layer > 64 ||
      m->n_embd_target <= 0 || m->n_embd_target > (1 << 16)) {
    throw Error(file +
                ": fields 'hidden_size'/'num_hidden_layers'/'backbone_hidden_size': "
                "implausible values");
  }
  const json& types = tc.contains("layer_types") ? tc["layer_types"] : json();
  if (!types.is_array() || types.size() != size_t(c.n_layer)) {
    throw Error(file + ": field 'layer_types': expected " + std::to_string(c.n_layer) + " entries");
  }
  const int n_head = int(json_int(tc, file, "num_attention_heads"));
  const int n_kv = int(json_int(tc, file, "num_key_value_heads"));
  const int n_kv_full =
      tc.contains("num_global_key_value_heads") && !tc["num_global_key_value_heads"].is_null()
          ? int(json_int(tc, file, "num_global_key_value_heads"))
          : n_kv;
  const int hd = int(json_int(tc, file, "head_dim"));
  const int hd_full = tc.contains("global_head_dim") && !tc["global_head_dim"].is_null()
                          ? int(json_int(tc, file, "global_head_dim"))
                          : hd;
  const int n_ff = int(json_int(tc, file, "intermediate_size"));
  double base_swa = 10000, base_full = 1e6, partial = 1.0;
  if (tc.contains("rope_parameters") && tc["rope_parameters"].is_object()) {
    const json& rp = tc["rope_parameters"];
    if (rp.contains("sliding_attention") && rp["sliding_attention"].is_object()) {
      base_swa = json_number_or(rp["sliding_attention"], file, "rope_theta", base_swa);
    }
    if (rp.contains("full_attention") && rp["full_attention"].is_object()) {
      base_full = json_number_or(rp["full_attention"], file, "rope_theta", base_full);
      partial = json_number_or(rp["full_attention"], file, "partial_rotary_factor", 1.0);
    }
  }
  if (!(partial > 0 && partial <= 1)) {
    throw Error(file + ": field 'partial_rotary_factor': must be in (0, 1]");
  }
  c.layers.resize(size_t(c.n_layer));
  std::vector<std::vector<float>> factors(size_t(c.n_layer));
  for (int i = 0; i < c.n_layer; ++i) {
    LayerConfig& l = c.layers[size_t(i)];
    const std::string t = types[size_t(i)].is_string() ? types[size_t(i)].get<std::string>() : "";
    if (t != "sliding_attention" && t != "full_attention") {
      throw Error(file + ": field 'layer_types[" + std::to_string(i) + "]': unknown type '" + t +
                  "'");
    }
    l.sliding = t == "sliding_attention";
    l.n_head = n_head;
    l.n_kv_head = l.sliding ? n_kv : n_kv_full;
    l.head_dim = l.sliding ? hd : hd_full;
    l.rope_dims = l.head_dim;
    l.n_ff = n_ff;
    l.rope_base = float(l.sliding ? base_swa : base_full);
    l.rope_freq_factors = !l.sliding;
    l.has_v = false;
  }
  validate_config(c, file);
  for (int i = 0; i < c.n_layer; ++i) {
    const LayerConfig& l = c.layers[size_t(i)];
    if (l.sliding) continue;
    // Proportional RoPE: pairs past partial * head_dim / 2 do not rotate.
    const int rotated = int(partial * l.head_dim / 2);
    factors[size_t(i)].assign(size_t(l.head_dim / 2), 1.0f);
    for (int j = rotated; j < l.head_dim / 2; ++j) {
      factors[size_t(i)][size_t(j)] = std::numeric_limits<float>::infinity();
    }
  }

  m->safetensors = SafetensorsModel::open(dir);
  const SafetensorsModel& st = *m->safetensors;
  DrafterModel* mp = m.get();
  TensorLookup lookup = [mp, &st](const std::string& name) -> std::optional<TensorRef> {
    const StTensor* t = st.find(name);
    if (!t) return std::nullopt;
    TensorRef r;
    r.name = name;
    r.source = t->file;
    r.type_name = t->dtype;
    r.supported = st_dtype_to_tensor_type(t->dtype, &r.type);
    r.raw_type = uint32_t(r.type);
    r.ne.assign(t->shape.rbegin(), t->shape.rend());  // HF [out, in] -> ggml {in, out}
    r.data = t->data;
    r.n_bytes = t->n_bytes;
    const int64_t elem = st_dtype_size(t->dtype);
    if (elem > 1 && reinterpret_cast<uintptr_t>(r.data) % uintptr_t(elem) != 0) {
      auto& copy = mp->owned.emplace_back(t->data, t->data + t->n_bytes);
      r.data = copy.data();
    }
    return r;
  };
  DrafterNames names;
  names.token_embd = "model.embed_tokens.weight";
  names.output_norm = "model.norm.weight";
  names.pre_projection = kHfDrafterPreProjection;
  names.post_projection = kHfDrafterPostProjection;
  names.layer = [](int i, LayerTensor t) {
    const bool kv = t == LayerTensor::kK || t == LayerTensor::kV || t == LayerTensor::kKNorm;
    return kv ? std::string() : hf_layer_tensor("model.", i, t);
  };
  fill_drafter_weights(*m, lookup, names, factors);
  if (tc.contains("vocab_size") && json_int(tc, file, "vocab_size") != c.n_vocab) {
    throw Error(file + ": field 'vocab_size': " + std::to_string(json_int(tc, file, "vocab_size")) +
                " but embed_tokens has " + std::to_string(c.n_vocab) + " rows");
  }
  return m;
}

}  // namespace

std::unique_ptr<DrafterModel> load_drafter(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return load_drafter_safetensors(path);
  if (!std::filesystem::exists(path, ec)) throw Error(path + ": no such file or directory");
  return load_drafter_gguf(path);
}

int drafter_source_layer(const DrafterModel& drafter, const Model& target, int i) {
  return drafter.config.layers[size_t(i)].sliding ? target.config.last_sliding_layer()
                                                  : target.config.last_full_layer();
}

void check_drafter_compatible(const DrafterModel& d, const Model& target) {
  const Config& tc = target.config;
  const std::string where = d.path + ": drafter does not fit target " + target.path + ": ";
  if (d.config.n_vocab != tc.n_vocab) {
    throw Error(where + "vocabulary " + std::to_string(d.config.n_vocab) + " vs " +
                std::to_string(tc.n_vocab));
  }
  if (d.n_embd_target != tc.n_embd) {
    throw Error(where + "backbone width (embedding_length_out) " + std::to_string(d.n_embd_target) +
                " vs target hidden size " + std::to_string(tc.n_embd));
  }
  if (d.config.sliding_window != tc.sliding_window) {
    throw Error(where + "sliding window " + std::to_string(d.config.sliding_window) + " vs " +
                std::to_string(tc.sliding_window));
  }
  for (int i = 0; i < d.config.n_layer; ++i) {
    const int src = drafter_source_layer(d, target, i);
    const LayerConfig& dl = d.config.layers[size_t(i)];
    if (src < 0) {
      throw Error(where + "layer " + std::to_string(i) + " needs a target " +
                  (dl.sliding ? "sliding" : "full") + " layer and there is none");
    }
    const LayerConfig& tl = tc.layers[size_t(src)];
    if (dl.n_kv_head != tl.n_kv_head || dl.head_dim != tl.head_dim) {
      throw Error(where + "layer " + std::to_string(i) + " expects " +
                  std::to_string(dl.n_kv_head) + " KV heads x " + std::to_string(dl.head_dim) +
                  ", target layer " + std::to_string(src) + " has " + std::to_string(tl.n_kv_head) +
                  " x " + std::to_string(tl.head_dim));
    }
  }
}

Drafter::Drafter(const DrafterModel& drafter, const Model& target, ThreadPool& pool)
    : drafter_(drafter), target_(target), pool_(pool) {
  check_drafter_compatible(drafter, target);
  const Config& c = drafter.config;
  for (int i = 0; i < c.n_layer; ++i)
    source_layer_.push_back(drafter_source_layer(drafter, target, i));
  xh_.resize(2 * size_t(drafter.n_embd_target));
  z_.resize(size_t(c.n_embd));
  a_.resize(size_t(c.n_embd));
  o_.resize(size_t(c.n_embd));
  d_.resize(size_t(c.n_embd));
  q_.resize(size_t(c.max_q_dim()));
  attn_.resize(size_t(c.max_q_dim()));
  gate_.resize(size_t(c.max_ff()));
  up_.resize(size_t(c.max_ff()));
  rope_.resize(size_t(c.max_head_dim()));
}

void Drafter::attention(const KvCache& cache, int il, int pos) {
  const LayerConfig& lc = drafter_.config.layers[size_t(il)];
  const int src = source_layer_[size_t(il)];
  const int hd = lc.head_dim;
  const int group = lc.n_head / lc.n_kv_head;
  // The target's own mask for a query at `pos`, minus `pos` itself (the drafter writes no KV).
  const KeyRange keys = allowed_keys(lc.sliding, drafter_.config.sliding_window, pos, -1);
  const int first = keys.first;
  const int last = pos - 1;
  const TensorType type = cache.layer(src).type;
  pool_.parallel_for(lc.n_head, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores;
    for (int64_t h = begin; h < end; ++h) {
      const int g = int(h) / group;
      const float* qh = q_.data() + h * hd;
      float* oh = attn_.data() + h * hd;
      std::fill(oh, oh + hd, 0.0f);
      const int n_keys = last - first + 1;
      if (n_keys <= 0) continue;
      scores.resize(size_t(n_keys));
      for (int j = 0; j < n_keys; ++j) {
        scores[size_t(j)] = kernels::dot_row(type, cache.k_row(src, first + j, g), qh, hd);
      }
      kernels::softmax(scores.data(), n_keys);
      for (int j = 0; j < n_keys; ++j) {
        kernels::axpy_row(type, cache.v_row(src, first + j, g), scores[size_t(j)], oh, hd);
      }
    }
  });
}

void Drafter::step(const KvCache& cache, int pos, int32_t token, const float* hidden, float* logits,
                   float* hidden_next, DraftTrace* trace) {
  const Config& c = drafter_.config;
  const int64_t H = c.n_embd;
  const int64_t HT = drafter_.n_embd_target;
  const float eps = c.rms_eps;
  if (token < 0 || token >= target_.config.n_vocab) {
    throw Error("drafter: token id " + std::to_string(token) + " out of range");
  }
  if (pos < 1 || pos > cache.n_past()) {
    throw Error("drafter: position " + std::to_string(pos) + " needs 1.." +
                std::to_string(cache.n_past()) + " (the target cache holds " +
                std::to_string(cache.n_past()) + " positions)");
  }
  for (int il = 0; il < c.n_layer; ++il) {
    const KvLayer& kl = cache.layer(source_layer_[size_t(il)]);
    const int first = allowed_keys(kl.sliding, c.sliding_window, pos, -1).first;
    if (kl.sliding && first < cache.n_past() - kl.capacity) {
      throw Error("drafter: position " + std::to_string(pos) + " is too far behind the cache");
    }
  }

  // 1.-2. z = pre_projection · [E_target[token] · sqrt(n_embd_target) ; hidden]
  const auto* row = static_cast<const uint8_t*>(target_.token_embd.data) +
                    int64_t(token) * target_.token_embd.row_bytes;
  kernels::dequantize_row(target_.token_embd.type, row, xh_.data(), HT);
  kernels::scale(xh_.data(), target_.config.embed_scale, HT);
  std::copy_n(hidden, HT, xh_.data() + HT);
  kernels::matmul(drafter_.pre_projection, xh_.data(), 2 * HT, 1, z_.data(), H, pool_);
  if (trace) {
    trace->pre_proj = z_;
    trace->attn_out.assign(size_t(c.n_layer), {});
    trace->out_scaled.assign(size_t(c.n_layer), {});
  }

  // 3. Q-only decoder layers over the target's cache (spec §1.3 order).
  for (int il = 0; il < c.n_layer; ++il) {
    const LayerConfig& lc = c.layers[size_t(il)];
    const DrafterLayerWeights& w = drafter_.layers[size_t(il)];
    const int hd = lc.head_dim;
    const int64_t q_dim = int64_t(lc.n_head) * hd;
    kernels::rms_norm(z_.data(), w.attn_norm.data(), a_.data(), H, eps);
    kernels::matmul(w.attn_q, a_.data(), H, 1, q_.data(), q_dim, pool_);
    rope_table(pos, w.rope_inv_freq, rope_.data());
    for (int h = 0; h < lc.n_head; ++h) {
      float* qh = q_.data() + h * hd;
      kernels::rms_norm(qh, w.attn_q_norm.data(), qh, hd, eps);
      rope(qh, hd, rope_.data());
    }
    attention(cache, il, pos);
    kernels::matmul(w.attn_output, attn_.data(), q_dim, 1, o_.data(), H, pool_);
    kernels::rms_norm(o_.data(), w.post_attention_norm.data(), o_.data(), H, eps);
    kernels::add(o_.data(), z_.data(), H);
    if (trace) trace->attn_out[size_t(il)] = z_;
    kernels::rms_norm(z_.data(), w.ffn_norm.data(), a_.data(), H, eps);
    const int64_t ff = lc.n_ff;
    kernels::matmul(w.ffn_gate, a_.data(), H, 1, gate_.data(), ff, pool_);
    kernels::matmul(w.ffn_up, a_.data(), H, 1, up_.data(), ff, pool_);
    kernels::gelu_tanh_mul(gate_.data(), up_.data(), gate_.data(), ff);
    kernels::matmul(w.ffn_down, gate_.data(), ff, 1, o_.data(), H, pool_);
    kernels::rms_norm(o_.data(), w.post_ffw_norm.data(), o_.data(), H, eps);
    kernels::add(o_.data(), z_.data(), H);
    kernels::scale(z_.data(), w.output_scale, H);
    if (trace) trace->out_scaled[size_t(il)] = z_;
  }

  // 4.-6. d = RMSNorm_final(z); logits = d · E_drafterᵀ; hidden_next = post_projection · d
  kernels::rms_norm(z_.data(), drafter_.output_norm.data(), d_.data(), H, eps);
  if (trace) trace->result_norm = d_;
  if (logits) kernels::matmul(drafter_.token_embd, d_.data(), H, 1, logits, c.n_vocab, pool_);
  if (hidden_next) {
    kernels::matmul(drafter_.post_projection, d_.data(), H, 1, hidden_next, HT, pool_);
  }
}

}  // namespace ug::gemma4
