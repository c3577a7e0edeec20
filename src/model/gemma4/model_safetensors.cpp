// Loading the Gemma 4 text decoder from a Hugging Face folder (config.json + safetensors, spec
// §7.1).
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "format/safetensors.h"
#include "model/gemma4/model.h"
#include "model/gemma4/model_loading.h"
#include "util/error.h"

namespace ug::gemma4 {

namespace {

using nlohmann::json;

json read_json(const std::filesystem::path& p) {
  std::ifstream in(p);
  if (!in) throw Error(p.string() + ": cannot open");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(p.string() + ": not valid JSON");
  return j;
}

struct ConfigReader {
  std::string file;
  const json& j;
  const json& field(const char* key) const {
    auto it = j.find(key);
    if (it == j.end()) throw Error(file + ": field '" + key + "': missing");
    return *it;
  }
  int64_t integer(const char* key) const {
    const json& v = field(key);
    if (!v.is_number_integer()) throw Error(file + ": field '" + key + "': expected an integer");
    return v.get<int64_t>();
  }
  int64_t integer_or(const char* key, int64_t def) const {
    return j.contains(key) ? integer(key) : def;
  }
  double number(const char* key) const {
    const json& v = field(key);
    if (!v.is_number()) throw Error(file + ": field '" + key + "': expected a number");
    return v.get<double>();
  }
  double number_or(const char* key, double def) const {
    return j.contains(key) && !j[key].is_null() ? number(key) : def;
  }
  bool boolean_or(const char* key, bool def) const {
    if (!j.contains(key)) return def;
    if (!j[key].is_boolean()) throw Error(file + ": field '" + key + "': expected true/false");
    return j[key].get<bool>();
  }
};

Config config_from_hf(const json& root, const std::string& file,
                      const std::function<bool(int)>& layer_has_v) {
  static const char* kArchitectures[] = {"Gemma4UnifiedForConditionalGeneration",
                                         "Gemma4UnifiedForCausalLM",
                                         "Gemma4ForConditionalGeneration", "Gemma4ForCausalLM"};
  if (root.contains("architectures") && root["architectures"].is_array() &&
      !root["architectures"].empty()) {
    const std::string arch = root["architectures"][0].is_string()
                                 ? root["architectures"][0].get<std::string>()
                                 : std::string("?");
    bool known = false;
    for (const char* a : kArchitectures) known = known || arch == a;
    if (!known) {
      throw Error(file + ": field 'architectures': '" + arch +
                  "' is not a Gemma 4 model (expected Gemma4UnifiedForConditionalGeneration)");
    }
  }
  const json& tc = root.contains("text_config") ? root["text_config"] : root;
  if (!tc.is_object()) throw Error(file + ": field 'text_config': expected an object");
  ConfigReader r{file, tc};

  if (r.integer_or("hidden_size_per_layer_input", 0) > 0) {
    throw Error(file +
                ": field 'hidden_size_per_layer_input': per-layer embeddings (Gemma 4 "
                "E2B/E4B) are not supported yet");
  }
  if (r.integer_or("num_kv_shared_layers", 0) > 0) {
    throw Error(file +
                ": field 'num_kv_shared_layers': KV sharing across layers (Gemma 4 E2B/E4B) "
                "is not supported yet");
  }
  if (r.boolean_or("enable_moe_block", false)) {
    throw Error(file +
                ": field 'enable_moe_block': mixture-of-experts layers (Gemma 4 26B-A4B) are "
                "not supported yet");
  }
  if (r.boolean_or("use_double_wide_mlp", false)) {
    throw Error(file +
                ": field 'use_double_wide_mlp': double-wide MLP layers are not supported yet");
  }

  Config c;
  c.name = root.value("_name_or_path", std::string());
  c.n_embd = int(r.integer("hidden_size"));
  c.n_layer = int(r.integer("num_hidden_layers"));
  c.n_vocab = int(r.integer("vocab_size"));
  c.n_ctx_train = int(r.integer_or("max_position_embeddings", 0));
  c.sliding_window = int(r.integer("sliding_window"));
  c.rms_eps = float(r.number_or("rms_norm_eps", 1e-6));
  c.final_softcap = float(r.number_or("final_logit_softcapping", 0));
  if (c.n_embd <= 0 || c.n_embd > (1 << 16) || c.n_layer <= 0 || c.n_layer > 1024) {
    throw Error(file + ": fields 'hidden_size'/'num_hidden_layers': implausible values");
  }
  c.embed_scale = std::sqrt(float(c.n_embd));

  const json& types = r.field("layer_types");
  if (!types.is_array() || types.size() != size_t(c.n_layer)) {
    throw Error(file + ": field 'layer_types': expected " + std::to_string(c.n_layer) + " entries");
  }
  const int n_head = int(r.integer("num_attention_heads"));
  const int n_kv = int(r.integer("num_key_value_heads"));
  const int n_kv_full = int(r.integer_or("num_global_key_value_heads", n_kv));
  const int hd = int(r.integer("head_dim"));
  const int hd_full = int(r.integer_or("global_head_dim", hd));
  const int n_ff = int(r.integer("intermediate_size"));
  const bool k_eq_v = r.boolean_or("attention_k_eq_v", false);

  double base_swa = 10000, base_full = 1e6;
  const json* rp = tc.contains("rope_parameters") ? &tc["rope_parameters"] : nullptr;
  if (rp && rp->is_object()) {
    if (rp->contains("sliding_attention")) {
      base_swa =
          ConfigReader{file + " rope_parameters.sliding_attention", (*rp)["sliding_attention"]}
              .number("rope_theta");
    }
    if (rp->contains("full_attention")) {
      base_full =
          ConfigReader{file + " rope_parameters.full_attention", (*rp)["full_attention"]}.number(
              "rope_theta");
    }
  }

  c.layers.resize(size_t(c.n_layer));
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
    l.has_v = !(k_eq_v && !l.sliding) || layer_has_v(i);
  }
  validate_config(c, file);
  return c;
}

// Proportional RoPE of full layers: only the first partial_rotary_factor * head_dim / 2 pairs
// rotate; an infinite divisor turns the others into the identity.
std::vector<float> proportional_factors(const json& tc, int head_dim) {
  double partial = 1.0;
  if (tc.contains("rope_parameters") && tc["rope_parameters"].contains("full_attention")) {
    const json& full = tc["rope_parameters"]["full_attention"];
    if (full.contains("partial_rotary_factor") && full["partial_rotary_factor"].is_number()) {
      partial = full["partial_rotary_factor"].get<double>();
    }
  }
  const int rotated = int(partial * head_dim / 2);
  std::vector<float> f(size_t(head_dim / 2), 1.0f);
  for (int j = rotated; j < head_dim / 2; ++j)
    f[size_t(j)] = std::numeric_limits<float>::infinity();
  return f;
}

}  // namespace

std::unique_ptr<Model> load_model_safetensors(const std::string& dir) {
  const std::filesystem::path root(dir);
  const std::filesystem::path config_path = root / "config.json";
  if (!std::filesystem::exists(config_path)) {
    throw Error(dir + ": not a model folder (no config.json)");
  }
  const json config = read_json(config_path);
  if (!config.is_object()) throw Error(config_path.string() + ": expected a JSON object");

  auto model = std::make_unique<Model>();
  model->path = dir;
  model->format = "safetensors";
  model->safetensors = SafetensorsModel::open(dir);
  const SafetensorsModel& st = *model->safetensors;

  const std::string prefix = hf_text_prefix(st);
  model->config = config_from_hf(config, config_path.string(), [&](int i) {
    return st.find(hf_layer_tensor(prefix, i, LayerTensor::kV)) != nullptr;
  });

  Model* m = model.get();
  TensorLookup lookup = [m, &st](const std::string& name) -> std::optional<TensorRef> {
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
    // safetensors does not pad between tensors: realign so kernels can load whole elements.
    const int64_t elem = st_dtype_size(t->dtype);
    if (elem > 1 && reinterpret_cast<uintptr_t>(r.data) % uintptr_t(elem) != 0) {
      auto& copy = m->owned.emplace_back(t->data, t->data + t->n_bytes);
      r.data = copy.data();
    }
    return r;
  };
  WeightNames wn;
  wn.token_embd = prefix + "embed_tokens.weight";
  wn.output_norm = prefix + "norm.weight";
  wn.layer = [prefix](int i, LayerTensor t) { return hf_layer_tensor(prefix, i, t); };
  const int config_vocab = model->config.n_vocab;
  fill_weights(*model, lookup, wn);
  if (model->config.n_vocab != config_vocab) {
    throw Error(config_path.string() + ": field 'vocab_size': " + std::to_string(config_vocab) +
                " but embed_tokens has " + std::to_string(model->config.n_vocab) + " rows");
  }

  const json& tc = config.contains("text_config") ? config["text_config"] : config;
  for (int i = 0; i < model->config.n_layer; ++i) {
    const LayerConfig& lc = model->config.layers[size_t(i)];
    const std::vector<float> factors =
        lc.rope_freq_factors ? proportional_factors(tc, lc.head_dim) : std::vector<float>();
    model->layers[size_t(i)].rope_inv_freq = rope_inv_freq(lc, factors);
  }

  const std::filesystem::path gen_path = root / "generation_config.json";
  if (std::filesystem::exists(gen_path)) {
    const json gen = read_json(gen_path);
    if (gen.contains("eos_token_id")) {
      const json& eos = gen["eos_token_id"];
      for (const json& id : eos.is_array() ? eos : json::array({eos})) {
        if (id.is_number_integer() && id.get<int64_t>() >= 0 &&
            id.get<int64_t>() < model->config.n_vocab) {
          model->eog_tokens.push_back(id.get<int>());
        }
      }
    }
    if (gen.contains("suppress_tokens") && gen["suppress_tokens"].is_array()) {
      for (const json& id : gen["suppress_tokens"]) {
        if (id.is_number_integer() && id.get<int64_t>() >= 0 &&
            id.get<int64_t>() < model->config.n_vocab) {
          model->suppress_tokens.push_back(id.get<int>());
        }
      }
    }
  }
  return model;
}

}  // namespace ug::gemma4
