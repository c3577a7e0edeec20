// Loading the Gemma 4 text decoder from a GGUF file (llama.cpp's "gemma4" layout, spec §7.2).
#include <algorithm>
#include <cmath>
#include <filesystem>

#include "format/gguf.h"
#include "model/gemma4/model.h"
#include "model/gemma4/model_loading.h"
#include "util/error.h"

namespace ug::gemma4 {

namespace {

// A key that may be stored as a scalar or as a per-layer array.
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

}  // namespace

Config config_from_gguf(const gguf::File& f) {
  const std::string arch = f.get_string("general.architecture");
  if (arch != "gemma4") {
    throw Error(f.path() + ": metadata 'general.architecture': '" + arch +
                "' is not a Gemma 4 text model (expected 'gemma4')");
  }
  auto key = [](const char* k) { return std::string("gemma4.") + k; };

  // Variants of Gemma 4 that need decoder features we do not implement yet.
  if (f.opt_int(key("embedding_length_per_layer_input")).value_or(0) > 0) {
    throw Error(f.path() +
                ": metadata 'gemma4.embedding_length_per_layer_input': per-layer embeddings "
                "(Gemma 4 E2B/E4B) are not supported yet");
  }
  if (f.opt_int(key("attention.shared_kv_layers")).value_or(0) > 0) {
    throw Error(f.path() +
                ": metadata 'gemma4.attention.shared_kv_layers': KV sharing across layers "
                "(Gemma 4 E2B/E4B) is not supported yet");
  }
  if (f.opt_int(key("expert_count")).value_or(0) > 0) {
    throw Error(f.path() +
                ": metadata 'gemma4.expert_count': mixture-of-experts layers (Gemma 4 26B-A4B) are "
                "not supported yet");
  }

  Config c;
  c.name = f.opt_string("general.name").value_or("");
  c.n_embd = int(f.get_int(key("embedding_length")));
  c.n_layer = int(f.get_int(key("block_count")));
  c.n_ctx_train = int(f.opt_int(key("context_length")).value_or(0));
  c.sliding_window = int(f.get_int(key("attention.sliding_window")));
  c.rms_eps = float(f.get_float(key("attention.layer_norm_rms_epsilon")));
  c.final_softcap = float(f.opt_float(key("final_logit_softcapping")).value_or(0));
  if (c.n_embd <= 0 || c.n_embd > (1 << 16) || c.n_layer <= 0 || c.n_layer > 1024) {
    throw Error(f.path() +
                ": metadata 'gemma4.embedding_length'/'block_count': implausible values " +
                std::to_string(c.n_embd) + "/" + std::to_string(c.n_layer));
  }
  c.embed_scale = std::sqrt(float(c.n_embd));

  const auto n_head = per_layer_ints(f, key("attention.head_count"), c.n_layer);
  const auto n_kv = per_layer_ints(f, key("attention.head_count_kv"), c.n_layer);
  const auto n_ff = per_layer_ints(f, key("feed_forward_length"), c.n_layer);
  const auto pattern = f.get_int_array(key("attention.sliding_window_pattern"));
  if (pattern.size() != size_t(c.n_layer)) {
    throw Error(f.path() + ": metadata 'gemma4.attention.sliding_window_pattern': " +
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
    l.has_v = f.find_tensor("blk." + std::to_string(i) + ".attn_v.weight") != nullptr;
  }
  validate_config(c, f.path());
  return c;
}

std::unique_ptr<Model> load_model_gguf(const std::string& path) {
  std::shared_ptr<gguf::File> file = gguf::File::open(path);
  const gguf::File& f = *file;
  auto model = std::make_unique<Model>();
  model->path = path;
  model->format = "gguf";
  model->gguf = file;
  model->config = config_from_gguf(f);
  const Config& c = model->config;

  for (const char* unsupported : {"per_layer_token_embd.weight", "per_layer_model_proj.weight"}) {
    if (f.find_tensor(unsupported)) {
      throw Error(path + ": tensor '" + unsupported +
                  "': per-layer embeddings (Gemma 4 E2B/E4B) are not supported yet");
    }
  }

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
  WeightNames wn;
  wn.token_embd = "token_embd.weight";
  wn.output_norm = "output_norm.weight";
  wn.layer = [](int i, LayerTensor t) { return gguf_layer_tensor(i, t); };
  fill_weights(*model, lookup, wn);

  // Full layers: frequencies divided by rope_freqs.weight (1 for rotated pairs, ~1e30 for
  // identity).
  std::vector<float> freq_factors;
  if (auto rf = lookup("rope_freqs.weight")) {
    freq_factors = load_vector(*rf, -1);
  }
  for (int i = 0; i < c.n_layer; ++i) {
    const LayerConfig& lc = c.layers[size_t(i)];
    std::vector<float> factors;
    if (lc.rope_freq_factors && !freq_factors.empty()) {
      if (freq_factors.size() != size_t(lc.head_dim / 2)) {
        throw Error(path + ": tensor 'rope_freqs.weight': " + std::to_string(freq_factors.size()) +
                    " entries, expected head_dim/2 = " + std::to_string(lc.head_dim / 2));
      }
      factors = freq_factors;
    }
    model->layers[size_t(i)].rope_inv_freq = rope_inv_freq(lc, factors);
  }

  if (f.has("tokenizer.ggml.suppress_tokens")) {
    for (int64_t id : f.get_int_array("tokenizer.ggml.suppress_tokens")) {
      if (id >= 0 && id < c.n_vocab) model->suppress_tokens.push_back(int(id));
    }
  }
  // End-of-generation tokens: the declared EOS plus the turn and tool-response markers, found by
  // their text so that vocabularies with other ids work.
  if (auto eos = f.opt_int("tokenizer.ggml.eos_token_id"); eos && *eos >= 0 && *eos < c.n_vocab) {
    model->eog_tokens.push_back(int(*eos));
  }
  if (f.has("tokenizer.ggml.tokens")) {
    const auto& tokens = f.get_string_array("tokenizer.ggml.tokens");
    for (size_t id = 0; id < tokens.size() && id < size_t(c.n_vocab); ++id) {
      if (tokens[id] == "<turn|>" || tokens[id] == "<|tool_response>" || tokens[id] == "<eos>") {
        if (std::find(model->eog_tokens.begin(), model->eog_tokens.end(), int(id)) ==
            model->eog_tokens.end()) {
          model->eog_tokens.push_back(int(id));
        }
      }
    }
  }
  return model;
}

std::unique_ptr<Model> load_model(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return load_model_safetensors(path);
  if (!std::filesystem::exists(path, ec)) throw Error(path + ": no such file or directory");
  return load_model_gguf(path);
}

}  // namespace ug::gemma4
