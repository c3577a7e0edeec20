#include "runtime/convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "model/gemma4/drafter.h"
#include "model/gemma4/model.h"
#include "model/gemma4/model_loading.h"
#include "model/gemma4/projector.h"
#include "model/gemma4/tensor_names.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace ug {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Type rules

bool parse_output_type(const std::string& name_in, OutputType* out) {
  std::string name = name_in;
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  struct Entry {
    const char* name;
    TensorType base;
    bool mix_m;
  };
  static const Entry kTypes[] = {
      {"f32", TensorType::F32, false},     {"f16", TensorType::F16, false},
      {"bf16", TensorType::BF16, false},   {"q8_0", TensorType::Q8_0, false},
      {"q4_0", TensorType::Q4_0, false},   {"q4_k", TensorType::Q4_K, false},
      {"q4_k_s", TensorType::Q4_K, false}, {"q4_k_m", TensorType::Q4_K, true},
      {"q5_k", TensorType::Q5_K, false},   {"q5_k_s", TensorType::Q5_K, false},
      {"q5_k_m", TensorType::Q5_K, true},  {"q6_k", TensorType::Q6_K, false},
  };
  for (const Entry& e : kTypes) {
    if (name == e.name) {
      *out = {name, e.base, e.mix_m};
      return true;
    }
  }
  return false;
}

const char* output_type_names() {
  return "f32, f16, bf16, q8_0, q4_0, q4_k (= q4_k_s), q4_k_m, q5_k (= q5_k_s), q5_k_m, q6_k";
}

uint32_t llama_file_type(const OutputType& t) {
  switch (t.base) {
    case TensorType::F32:
      return 0;
    case TensorType::F16:
      return 1;
    case TensorType::Q4_0:
      return 2;
    case TensorType::Q8_0:
      return 7;
    case TensorType::Q4_K:
      return t.mix_m ? 15 : 14;
    case TensorType::Q5_K:
      return t.mix_m ? 17 : 16;
    case TensorType::Q6_K:
      return 18;
    case TensorType::BF16:
      return 32;
    default:
      return 0;
  }
}

namespace {

bool is_float_type(TensorType t) {
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
}

// llama-quantize's layer choice for the "_m" mixes: the first and last eighth of the tensors and
// every third one in between get more bits.
bool use_more_bits(int i, int n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

}  // namespace

TensorType choose_tensor_type(const OutputType& t, TensorRole role, int64_t ne0, int index,
                              int count) {
  TensorType type = t.base;
  switch (role) {
    case TensorRole::kVector:
      return TensorType::F32;
    case TensorRole::kPositionTable:
      return is_float_type(t.base) ? t.base : TensorType::F32;
    case TensorRole::kProjector:
      type = is_float_type(t.base) ? t.base : TensorType::Q8_0;
      break;
    case TensorRole::kTokenEmbd:
      // The tied embedding is also the LM head: llama-quantize stores it as Q6_K below 8 bits.
      type = is_float_type(t.base) || t.base == TensorType::Q8_0 ? t.base : TensorType::Q6_K;
      break;
    case TensorRole::kAttnV:
    case TensorRole::kFfnDown:
      if (t.mix_m && use_more_bits(index, count)) type = TensorType::Q6_K;
      break;
    case TensorRole::kMatrix:
      break;
  }
  if (ne0 % type_block_elems(type) != 0) {
    type = ne0 % 32 == 0 ? TensorType::Q8_0 : TensorType::F16;
  }
  return type;
}

TensorRole tensor_role_from_gguf_name(const std::string& full_name, int n_dims) {
  std::string name = full_name;
  if (name.rfind(gemma4::kBundleDrafterPrefix, 0) == 0) {
    name = name.substr(std::strlen(gemma4::kBundleDrafterPrefix));
  }
  if (name == gemma4::gguf_projector_names().pos) return TensorRole::kPositionTable;
  if (n_dims <= 1) return TensorRole::kVector;
  if (name == "token_embd.weight" || name == "output.weight") return TensorRole::kTokenEmbd;
  if (name.rfind("v.", 0) == 0 || name.rfind("mm.", 0) == 0) return TensorRole::kProjector;
  if (name.find(".attn_v.weight") != std::string::npos) return TensorRole::kAttnV;
  if (name.find(".ffn_down.weight") != std::string::npos) return TensorRole::kFfnDown;
  return TensorRole::kMatrix;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Streaming row pipeline

// fp32 rows of one output tensor, produced on demand.
struct RowSource {
  int64_t cols = 0;
  int64_t rows = 0;
  std::function<void(int64_t row, float* dst)> read;  // must be thread-safe
  std::function<void(int64_t r0, int64_t r1)> done;   // rows [r0, r1) finished (may be null)
};

using Release = std::function<void(const uint8_t* data, uint64_t n)>;

RowSource plain_rows(TensorType src_type, const uint8_t* data, int64_t cols, int64_t rows,
                     Release release) {
  const int64_t rb = type_row_bytes(src_type, cols);
  RowSource s;
  s.cols = cols;
  s.rows = rows;
  s.read = [=](int64_t r, float* dst) {
    kernels::dequantize_row(src_type, data + r * rb, dst, cols);
  };
  if (release) {
    s.done = [=](int64_t r0, int64_t r1) { release(data + r0 * rb, uint64_t((r1 - r0) * rb)); };
  }
  return s;
}

// Everything one output file needs while it is written.
struct Job {
  gguf::Writer writer;
  ThreadPool* pool = nullptr;
  const ConvertProgress* progress = nullptr;
  std::string file;
  int n_tensors = 0;
  std::shared_ptr<int> counter = std::make_shared<int>(0);

  void announce(const std::string& name) {
    ++*counter;
    if (progress && progress->on_tensor) progress->on_tensor(file, name, *counter, n_tensors);
  }

  // Re-encodes `src` into `type` chunk by chunk.
  void add_rows(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                RowSource src) {
    ++n_tensors;
    writer.add_tensor_stream(
        name, type, ne, [this, name, type, src](const gguf::Writer::Emit& emit) {
          announce(name);
          const int64_t out_rb = type_row_bytes(type, src.cols);
          const int64_t chunk =
              std::max<int64_t>(1, (int64_t(8) << 20) / std::max<int64_t>(1, out_rb));
          std::vector<uint8_t> out(
              size_t(std::min(chunk, std::max<int64_t>(src.rows, 1)) * out_rb));
          for (int64_t r0 = 0; r0 < src.rows; r0 += chunk) {
            const int64_t r1 = std::min(src.rows, r0 + chunk);
            pool->parallel_for(r1 - r0, 1, [&](int64_t b, int64_t e) {
              std::vector<float> tmp(size_t(src.cols));
              for (int64_t r = b; r < e; ++r) {
                src.read(r0 + r, tmp.data());
                kernels::quantize_row(type, tmp.data(), out.data() + r * out_rb, src.cols);
              }
            });
            emit(out.data(), uint64_t((r1 - r0) * out_rb));
            if (src.done) src.done(r0, r1);
          }
        });
  }

  // Copies bytes unchanged (same type in and out).
  void add_copy(const std::string& name, TensorType type, const std::vector<int64_t>& ne,
                const uint8_t* data, uint64_t n_bytes, Release release) {
    ++n_tensors;
    writer.add_tensor_stream(name, type, ne,
                             [this, name, data, n_bytes, release](const gguf::Writer::Emit& emit) {
                               announce(name);
                               const uint64_t chunk = uint64_t(8) << 20;
                               for (uint64_t off = 0; off < n_bytes; off += chunk) {
                                 const uint64_t n = std::min(chunk, n_bytes - off);
                                 emit(data + off, n);
                                 if (release) release(data + off, n);
                               }
                             });
  }

  void add_vector(const std::string& name, std::vector<float> values) {
    ++n_tensors;
    auto data = std::make_shared<std::vector<float>>(std::move(values));
    writer.add_tensor_stream(name, TensorType::F32, {int64_t(data->size())},
                             [this, name, data](const gguf::Writer::Emit& emit) {
                               announce(name);
                               emit(data->data(), data->size() * sizeof(float));
                             });
  }
};

// ---------------------------------------------------------------------------------------------
// Hugging Face side

json read_json_file(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw Error(p.string() + ": cannot open");
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw Error(p.string() + ": not a JSON object");
  return j;
}

Release releaser_for(const SafetensorsModel& st, const StTensor& t) {
  for (const auto& shard : st.shards()) {
    if (shard->path() == t.file) {
      const SafetensorsFile* f = shard.get();
      return [f](const uint8_t* p, uint64_t n) { f->release(p, n); };
    }
  }
  return {};
}

std::vector<int64_t> ggml_shape(const StTensor& t) {
  std::vector<int64_t> ne(t.shape.rbegin(), t.shape.rend());
  if (ne.empty()) ne.push_back(1);
  return ne;
}

int64_t product(const std::vector<int64_t>& ne, size_t from) {
  int64_t n = 1;
  for (size_t i = from; i < ne.size(); ++i) n *= ne[i];
  return n;
}

// Tracks attn_v / ffn_down indices for the _m mixes.
struct RoleCounter {
  int n_attn_v = 0, n_ffn_down = 0;
  int i_attn_v = 0, i_ffn_down = 0;
  std::pair<int, int> next(TensorRole role) {
    if (role == TensorRole::kAttnV) return {i_attn_v++, n_attn_v};
    if (role == TensorRole::kFfnDown) return {i_ffn_down++, n_ffn_down};
    return {0, 0};
  }
};

// Adds one HF tensor under a GGUF name: same values, ggml shape, the output type's rules.
void add_hf_tensor(Job& job, const SafetensorsModel& st, const std::string& hf_name,
                   const std::string& gguf_name, TensorRole role, RoleCounter& rc,
                   const OutputType& ot, std::set<std::string>& used) {
  const StTensor& t = st.get(hf_name);
  used.insert(hf_name);
  const TensorType src_type = t.tensor_type();
  const std::vector<int64_t> ne = ggml_shape(t);
  if (ne.size() == 1 && role != TensorRole::kVector) role = TensorRole::kVector;
  const auto [index, count] = rc.next(role);
  const TensorType type = choose_tensor_type(ot, role, ne[0], index, count);
  if (type == src_type) {
    job.add_copy(gguf_name, type, ne, t.data, t.n_bytes, releaser_for(st, t));
  } else {
    job.add_rows(gguf_name, type, ne,
                 plain_rows(src_type, t.data, ne[0], product(ne, 1), releaser_for(st, t)));
  }
}

// rope_freqs.weight of a full-attention layer: 1 for rotated pairs, 1e30 for the pairs
// proportional RoPE leaves alone (the loaders turn those into inv_freq 0).
std::vector<float> rope_freqs_from(const std::vector<float>& inv_freq) {
  std::vector<float> f(inv_freq.size());
  for (size_t j = 0; j < f.size(); ++j) f[j] = inv_freq[j] == 0.0f ? 1e30f : 1.0f;
  return f;
}

std::string default_name(const json& config, const std::string& dir) {
  std::string n = config.value("_name_or_path", std::string());
  if (n.empty()) n = fs::path(dir).lexically_normal().filename().string();
  if (n.empty()) n = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  const size_t slash = n.find_last_of('/');
  return slash == std::string::npos ? n : n.substr(slash + 1);
}

void set_per_layer(gguf::Writer& w, const std::string& key, const std::vector<int32_t>& v) {
  if (!v.empty() && std::all_of(v.begin(), v.end(), [&](int32_t x) { return x == v[0]; })) {
    w.set_u32(key, uint32_t(v[0]));
  } else {
    w.set_i32_array(key, v);
  }
}

// gemma4.* / gemma4-assistant.* keys shared by the text model and the drafter.
void set_decoder_keys(gguf::Writer& w, const std::string& arch, const gemma4::Config& c,
                      int64_t context_length, float softcap) {
  auto key = [&](const char* k) { return arch + "." + k; };
  const gemma4::LayerConfig* full = nullptr;
  const gemma4::LayerConfig* swa = nullptr;
  std::vector<int32_t> n_ff, n_head, n_kv;
  std::vector<bool> pattern;
  for (const auto& l : c.layers) {
    if (l.sliding && !swa) swa = &l;
    if (!l.sliding && !full) full = &l;
    n_ff.push_back(l.n_ff);
    n_head.push_back(l.n_head);
    n_kv.push_back(l.n_kv_head);
    pattern.push_back(l.sliding);
  }
  if (!full) full = swa;
  if (!swa) swa = full;
  if (context_length > 0) w.set_u32(key("context_length"), uint32_t(context_length));
  w.set_u32(key("embedding_length"), uint32_t(c.n_embd));
  w.set_u32(key("block_count"), uint32_t(c.n_layer));
  set_per_layer(w, key("feed_forward_length"), n_ff);
  set_per_layer(w, key("attention.head_count"), n_head);
  w.set_i32_array(key("attention.head_count_kv"), n_kv);
  w.set_f32(key("rope.freq_base"), full->rope_base);
  w.set_f32(key("rope.freq_base_swa"), swa->rope_base);
  w.set_f32(key("attention.layer_norm_rms_epsilon"), c.rms_eps);
  w.set_u32(key("attention.key_length"), uint32_t(full->head_dim));
  w.set_u32(key("attention.value_length"), uint32_t(full->head_dim));
  w.set_u32(key("attention.key_length_swa"), uint32_t(swa->head_dim));
  w.set_u32(key("attention.value_length_swa"), uint32_t(swa->head_dim));
  if (softcap > 0) w.set_f32(key("final_logit_softcapping"), softcap);
  w.set_u32(key("attention.sliding_window"), uint32_t(c.sliding_window));
  w.set_u32(key("attention.shared_kv_layers"), 0);
  w.set_u32(key("embedding_length_per_layer_input"), 0);
  w.set_bool_array(key("attention.sliding_window_pattern"), pattern);
  w.set_u32(key("rope.dimension_count"), uint32_t(full->rope_dims));
  w.set_u32(key("rope.dimension_count_swa"), uint32_t(swa->rope_dims));
}

std::vector<int32_t> suppress_tokens_of(const fs::path& dir) {
  std::vector<int32_t> out;
  const fs::path gen = dir / "generation_config.json";
  if (!fs::exists(gen)) return out;
  const json g = read_json_file(gen);
  if (g.contains("suppress_tokens")) {
    if (!g["suppress_tokens"].is_array()) {
      throw Error(gen.string() + ": field 'suppress_tokens': expected an array of ids");
    }
    for (const json& id : g["suppress_tokens"]) {
      if (!id.is_number_integer()) {
        throw Error(gen.string() + ": field 'suppress_tokens': expected integer ids");
      }
      out.push_back(id.get<int32_t>());
    }
  }
  return out;
}

// tokenizer.* keys: from `vocab_gguf` when given, else from tokenizer.json (+ config, template).
// The drafter never renders a chat: its file carries no template (as llama.cpp's drafter GGUFs).
void set_tokenizer_keys(gguf::Writer& w, const fs::path& dir, const std::string& vocab_gguf,
                        int n_vocab, bool with_template = true) {
  const std::vector<int32_t> suppress = suppress_tokens_of(dir);
  int vocab_size = 0;
  if (!vocab_gguf.empty()) {
    auto f = gguf::File::open(vocab_gguf);
    if (f->opt_string("tokenizer.ggml.model").value_or("") != "gemma4") {
      throw Error(vocab_gguf + ": metadata 'tokenizer.ggml.model': not a gemma4 vocabulary");
    }
    for (const auto& kv : f->metadata()) {
      if (kv.key.rfind("tokenizer.", 0) != 0) continue;
      if (!with_template && kv.key == "tokenizer.chat_template") continue;
      w.set(kv.key, kv.value);
    }
    vocab_size = int(f->get_string_array("tokenizer.ggml.tokens").size());
  } else {
    if (!fs::exists(dir / "tokenizer.json")) {
      throw Error(
          dir.string() +
          ": no tokenizer.json (give --vocab FILE.gguf to take the vocabulary from a GGUF)");
    }
    const Tokenizer tok = Tokenizer::from_hf_dir(dir.string());
    const TokenizerData& d = tok.data();
    vocab_size = int(d.tokens.size());
    w.set_string("tokenizer.ggml.model", "gemma4");
    w.set_string_array("tokenizer.ggml.tokens", d.tokens);
    std::vector<float> scores = d.scores;
    if (scores.empty()) scores.assign(d.tokens.size(), 0.0f);
    w.set_f32_array("tokenizer.ggml.scores", scores);
    std::vector<int32_t> types(d.tokens.size());
    for (size_t i = 0; i < types.size(); ++i) types[i] = int32_t(tok.token_type(int32_t(i)));
    w.set_i32_array("tokenizer.ggml.token_type", types);
    w.set_string_array("tokenizer.ggml.merges", d.merges);
    if (d.bos_id >= 0) w.set_u32("tokenizer.ggml.bos_token_id", uint32_t(d.bos_id));
    if (d.eos_id >= 0) w.set_u32("tokenizer.ggml.eos_token_id", uint32_t(d.eos_id));
    if (d.unk_id >= 0) w.set_u32("tokenizer.ggml.unknown_token_id", uint32_t(d.unk_id));
    if (d.pad_id >= 0) w.set_u32("tokenizer.ggml.padding_token_id", uint32_t(d.pad_id));
    w.set_bool("tokenizer.ggml.add_bos_token", d.add_bos);
    w.set_bool("tokenizer.ggml.add_space_prefix", d.add_space_prefix);
    if (with_template && !d.chat_template.empty()) {
      w.set_string("tokenizer.chat_template", d.chat_template);
    }
    if (suppress.empty() && !d.suppress_tokens.empty()) {
      w.set_i32_array("tokenizer.ggml.suppress_tokens", d.suppress_tokens);
    }
  }
  if (vocab_size != n_vocab) {
    throw Error(dir.string() + ": the tokenizer has " + std::to_string(vocab_size) +
                " tokens but the embedding has " + std::to_string(n_vocab) + " rows");
  }
  for (int32_t id : suppress) {
    if (id < 0 || id >= n_vocab) {
      throw Error((dir / "generation_config.json").string() + ": field 'suppress_tokens': id " +
                  std::to_string(id) + " is outside the vocabulary");
    }
  }
  if (!suppress.empty()) w.set_i32_array("tokenizer.ggml.suppress_tokens", suppress);
}

void set_general(gguf::Writer& w, const std::string& arch, const std::string& name,
                 const OutputType& ot) {
  w.set_string("general.architecture", arch);
  w.set_string("general.name", name);
  w.set_u32("general.file_type", llama_file_type(ot));
}

void finish_general(gguf::Writer& w, const OutputType& ot) {
  if (!is_float_type(ot.base)) w.set_u32("general.quantization_version", 2);
}

std::string architecture_of(const json& config, const std::string& file) {
  if (!config.contains("architectures") || !config["architectures"].is_array() ||
      config["architectures"].empty() || !config["architectures"][0].is_string()) {
    throw Error(
        file +
        ": field 'architectures': missing (expected [\"Gemma4UnifiedForConditionalGeneration\"])");
  }
  return config["architectures"][0].get<std::string>();
}

bool is_text_architecture(const std::string& a) {
  return a == "Gemma4UnifiedForConditionalGeneration" || a == "Gemma4UnifiedForCausalLM" ||
         a == "Gemma4ForConditionalGeneration" || a == "Gemma4ForCausalLM";
}
bool is_assistant_architecture(const std::string& a) {
  return a == "Gemma4UnifiedAssistantForCausalLM" || a == "Gemma4AssistantForCausalLM";
}

// Text decoder tensors (spec §7.2 order).
void add_text_tensors(Job& job, const gemma4::Model& m, const OutputType& ot,
                      std::set<std::string>& used) {
  const SafetensorsModel& st = *m.safetensors;
  const std::string prefix = gemma4::hf_text_prefix(st);
  RoleCounter rc;
  for (int i = 0; i < m.config.n_layer; ++i) {
    if (st.find(gemma4::hf_layer_tensor(prefix, i, gemma4::LayerTensor::kV))) ++rc.n_attn_v;
    ++rc.n_ffn_down;
  }
  add_hf_tensor(job, st, prefix + "embed_tokens.weight", "token_embd.weight",
                TensorRole::kTokenEmbd, rc, ot, used);
  for (int i = 0; i < m.config.n_layer; ++i) {
    if (m.config.layers[size_t(i)].rope_freq_factors) {
      job.add_vector("rope_freqs.weight", rope_freqs_from(m.layers[size_t(i)].rope_inv_freq));
      break;
    }
  }
  add_hf_tensor(job, st, prefix + "norm.weight", "output_norm.weight", TensorRole::kVector, rc, ot,
                used);
  for (int i = 0; i < m.config.n_layer; ++i) {
    for (gemma4::LayerTensor lt : gemma4::kAllLayerTensors) {
      const std::string hf = gemma4::hf_layer_tensor(prefix, i, lt);
      if (lt == gemma4::LayerTensor::kV && !st.find(hf)) continue;  // K=V full layers
      const std::string gg = gemma4::gguf_layer_tensor(i, lt);
      TensorRole role = TensorRole::kVector;
      if (gemma4::is_layer_matrix(lt)) {
        role = lt == gemma4::LayerTensor::kV      ? TensorRole::kAttnV
               : lt == gemma4::LayerTensor::kDown ? TensorRole::kFfnDown
                                                  : TensorRole::kMatrix;
      }
      add_hf_tensor(job, st, hf, gg, role, rc, ot, used);
    }
  }
}

// Vision patch vectors: GGUF column c*2304 + row*48 + col holds HF column (row*48 + col)*3 + c
// (llama.cpp builds patches channel-major with im2col, HF row-major with channels last).
constexpr int64_t kPatchPixels = 48 * 48;
int64_t hwc_index_of_chw(int64_t i) {
  return (i % kPatchPixels) * 3 + i / kPatchPixels;
}

RowSource chw_rows(const StTensor& t, const SafetensorsModel& st, int64_t cols, int64_t rows) {
  const TensorType src_type = t.tensor_type();
  RowSource base = plain_rows(src_type, t.data, cols, rows, releaser_for(st, t));
  RowSource s = base;
  s.read = [base, cols](int64_t r, float* dst) {
    std::vector<float> hwc(static_cast<size_t>(cols));
    base.read(r, hwc.data());
    for (int64_t i = 0; i < cols; ++i) dst[i] = hwc[size_t(hwc_index_of_chw(i))];
  };
  return s;
}

void add_projector_tensors(Job& job, const SafetensorsModel& st, int n_embd, const OutputType& ot,
                           std::set<std::string>& used) {
  const gemma4::ProjectorNames hf = gemma4::hf_projector_names(st);
  const gemma4::ProjectorNames& gg = gemma4::gguf_projector_names();
  RoleCounter rc;
  if (const StTensor* dense = st.find(hf.dense_w)) {
    const int64_t n_mm = dense->shape[0];
    const int64_t cols = dense->shape[1];
    used.insert(hf.dense_w);
    const TensorType type = choose_tensor_type(ot, TensorRole::kProjector, cols, 0, 0);
    job.add_rows(gg.dense_w, type, {cols, n_mm}, chw_rows(*dense, st, cols, n_mm));
    add_hf_tensor(job, st, hf.dense_b, gg.dense_b, TensorRole::kVector, rc, ot, used);
    for (auto [h, g] : {std::pair{hf.ln1_w, gg.ln1_w}, std::pair{hf.ln1_b, gg.ln1_b}}) {
      const StTensor& t = st.get(h);
      used.insert(h);
      job.add_rows(g, TensorType::F32, {t.n_elements()}, chw_rows(t, st, t.n_elements(), 1));
    }
    add_hf_tensor(job, st, hf.ln2_w, gg.ln2_w, TensorRole::kVector, rc, ot, used);
    add_hf_tensor(job, st, hf.ln2_b, gg.ln2_b, TensorRole::kVector, rc, ot, used);
    add_hf_tensor(job, st, hf.ln3_w, gg.ln3_w, TensorRole::kVector, rc, ot, used);
    add_hf_tensor(job, st, hf.ln3_b, gg.ln3_b, TensorRole::kVector, rc, ot, used);
    // HF [n_pos, 2, n_mm] -> GGUF {n_mm, n_pos, 2}: the x table, then the y table.
    const StTensor& pos = st.get(hf.pos);
    used.insert(hf.pos);
    const int64_t n_pos = pos.shape[0];
    const TensorType src_type = pos.tensor_type();
    RowSource base = plain_rows(src_type, pos.data, n_mm, n_pos * 2, {});
    RowSource s = base;
    s.read = [base, n_pos](int64_t r, float* dst) { base.read((r % n_pos) * 2 + r / n_pos, dst); };
    job.add_rows(gg.pos, choose_tensor_type(ot, TensorRole::kPositionTable, n_mm, 0, 0),
                 {n_mm, n_pos, 2}, s);
    add_hf_tensor(job, st, hf.proj, gg.proj, TensorRole::kProjector, rc, ot, used);
  }
  if (st.find(hf.audio_proj)) {
    add_hf_tensor(job, st, hf.audio_proj, gg.audio_proj, TensorRole::kProjector, rc, ot, used);
  }
  (void)n_embd;
}

void set_projector_keys(gguf::Writer& w, const gemma4::Projector& p, int n_embd, float eps,
                        bool standalone) {
  if (standalone) w.set_string("general.type", "mmproj");
  if (p.vision) {
    w.set_bool("clip.has_vision_encoder", true);
    w.set_u32("clip.vision.projection_dim", uint32_t(n_embd));
    w.set_u32("clip.vision.image_size", 224);
    w.set_u32("clip.vision.patch_size", 16);
    w.set_u32("clip.vision.embedding_length", uint32_t(p.vision->n_mm));
    w.set_u32("clip.vision.feed_forward_length", 0);
    w.set_u32("clip.vision.block_count", 0);
    w.set_u32("clip.vision.attention.head_count", 0);
    w.set_f32_array("clip.vision.image_mean", {0.0f, 0.0f, 0.0f});
    w.set_f32_array("clip.vision.image_std", {1.0f, 1.0f, 1.0f});
    w.set_string("clip.vision.projector_type", "gemma4uv");
    w.set_f32("clip.vision.attention.layer_norm_epsilon", eps);
    if (p.default_image_tokens > 0) {
      w.set_u32("clip.vision.max_soft_tokens", uint32_t(p.default_image_tokens));
    }
  }
  if (p.audio) {
    w.set_bool("clip.has_audio_encoder", true);
    w.set_u32("clip.audio.projection_dim", uint32_t(n_embd));
    w.set_u32("clip.audio.embedding_length", uint32_t(p.audio->frame));
    w.set_u32("clip.audio.feed_forward_length", 0);
    w.set_u32("clip.audio.block_count", 0);
    w.set_u32("clip.audio.attention.head_count", 0);
    w.set_string("clip.audio.projector_type", "gemma4ua");
    w.set_u32("clip.audio.num_mel_bins", 128);  // llama.cpp's sentinel (spec §3.4)
    w.set_f32("clip.audio.attention.layer_norm_epsilon", eps);
  }
}

// Drafter metadata and tensors; `tp` is "" in an assistant GGUF and "mtp." in a bundle.
void add_drafter(Job& job, const gemma4::DrafterModel& d, const json& config,
                 const std::string& file, const OutputType& ot, const std::string& tp,
                 std::set<std::string>& used) {
  const json& tc = config.contains("text_config") ? config["text_config"] : config;
  const int64_t ctx = tc.value("max_position_embeddings", int64_t(0));
  const float softcap =
      tc.contains("final_logit_softcapping") && tc["final_logit_softcapping"].is_number()
          ? tc["final_logit_softcapping"].get<float>()
          : 0.0f;
  const std::string arch = "gemma4-assistant";
  set_decoder_keys(job.writer, arch, d.config, ctx, softcap);
  job.writer.set_u32(arch + ".embedding_length_out", uint32_t(d.n_embd_target));
  job.writer.set_u32(arch + ".nextn_predict_layers", uint32_t(d.config.n_layer));
  (void)file;

  const SafetensorsModel& st = *d.safetensors;
  RoleCounter rc;
  rc.n_ffn_down = d.config.n_layer;
  add_hf_tensor(job, st, "model.embed_tokens.weight", tp + "token_embd.weight",
                TensorRole::kTokenEmbd, rc, ot, used);
  for (int i = 0; i < d.config.n_layer; ++i) {
    if (d.config.layers[size_t(i)].rope_freq_factors) {
      job.add_vector(tp + "rope_freqs.weight", rope_freqs_from(d.layers[size_t(i)].rope_inv_freq));
      break;
    }
  }
  add_hf_tensor(job, st, "model.norm.weight", tp + "output_norm.weight", TensorRole::kVector, rc,
                ot, used);
  add_hf_tensor(job, st, gemma4::kHfDrafterPreProjection, tp + gemma4::kGgufDrafterPreProjection,
                TensorRole::kMatrix, rc, ot, used);
  add_hf_tensor(job, st, gemma4::kHfDrafterPostProjection, tp + gemma4::kGgufDrafterPostProjection,
                TensorRole::kMatrix, rc, ot, used);
  for (int i = 0; i < d.config.n_layer; ++i) {
    for (gemma4::LayerTensor lt : gemma4::kAllLayerTensors) {
      if (lt == gemma4::LayerTensor::kK || lt == gemma4::LayerTensor::kV ||
          lt == gemma4::LayerTensor::kKNorm) {
        continue;
      }
      const TensorRole role = !gemma4::is_layer_matrix(lt)       ? TensorRole::kVector
                              : lt == gemma4::LayerTensor::kDown ? TensorRole::kFfnDown
                                                                 : TensorRole::kMatrix;
      add_hf_tensor(job, st, gemma4::hf_layer_tensor("model.", i, lt),
                    tp + gemma4::gguf_layer_tensor(i, lt), role, rc, ot, used);
    }
  }
}

// Every tensor of the folder must have been converted: an unknown one means a model variant this
// converter does not understand, and silently dropping weights would give a broken file.
void check_all_used(const SafetensorsModel& st, const std::set<std::string>& used,
                    const std::set<std::string>& ignorable) {
  for (const std::string& name : st.tensor_names()) {
    if (used.count(name) || ignorable.count(name)) continue;
    throw Error(st.get(name).file + ": tensor '" + name +
                "': not part of the Gemma 4 layout this converter knows (spec §7.1)");
  }
}

fs::path default_mmproj_path(const std::string& out) {
  const fs::path p(out);
  return p.parent_path() / ("mmproj-" + p.filename().string());
}

}  // namespace

std::vector<std::string> convert_hf_to_gguf(const std::string& hf_dir, const ConvertOptions& o) {
  const fs::path dir(hf_dir);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(hf_dir + ": not a folder");
  const fs::path config_path = dir / "config.json";
  if (!fs::exists(config_path)) throw Error(hf_dir + ": not a model folder (no config.json)");
  if (o.out_path.empty()) throw Error("convert: no output file (-o OUT.gguf)");
  const json config = read_json_file(config_path);
  const std::string arch = architecture_of(config, config_path.string());
  ThreadPool pool(std::max(1, o.n_threads));
  const std::string name = o.name.empty() ? default_name(config, hf_dir) : o.name;
  std::vector<std::string> written;

  if (is_assistant_architecture(arch)) {
    if (o.bundle)
      throw Error(hf_dir + ": --bundle needs the main model folder (this is a drafter)");
    auto d = gemma4::load_drafter(hf_dir);
    Job job;
    job.pool = &pool;
    job.progress = &o.progress;
    job.file = o.out_path;
    set_general(job.writer, "gemma4-assistant", name, o.type);
    std::set<std::string> used;
    add_drafter(job, *d, config, config_path.string(), o.type, "", used);
    set_tokenizer_keys(job.writer, dir, o.vocab_gguf, d->config.n_vocab, /*with_template=*/false);
    finish_general(job.writer, o.type);
    check_all_used(*d->safetensors, used, {});
    job.writer.write(o.out_path);
    written.push_back(o.out_path);
    return written;
  }
  if (!is_text_architecture(arch)) {
    throw Error(
        config_path.string() + ": field 'architectures': '" + arch +
        "' is not a Gemma 4 model this converter knows (Gemma4UnifiedForConditionalGeneration "
        "or Gemma4UnifiedAssistantForCausalLM)");
  }

  auto model = gemma4::load_model_safetensors(hf_dir);
  const gemma4::Model& m = *model;
  const SafetensorsModel& st = *m.safetensors;
  const json& tc = config.contains("text_config") ? config["text_config"] : config;
  std::unique_ptr<gemma4::Projector> projector;
  if (gemma4::has_projector_tensors(hf_dir)) {
    projector = gemma4::load_projector(hf_dir, m.config.n_embd);
  }
  std::unique_ptr<gemma4::DrafterModel> drafter;
  json drafter_config;
  if (!o.assistant_dir.empty()) {
    if (!o.bundle)
      throw Error(
          "convert: --assistant needs --bundle (convert the drafter folder on its own otherwise)");
    drafter = gemma4::load_drafter(o.assistant_dir);
    gemma4::check_drafter_compatible(*drafter, m);
    drafter_config = read_json_file(fs::path(o.assistant_dir) / "config.json");
  }

  std::set<std::string> used, ignorable;
  if (tc.value("tie_word_embeddings", config.value("tie_word_embeddings", true))) {
    ignorable.insert("lm_head.weight");  // tied: the same matrix as embed_tokens
  }

  Job job;
  job.pool = &pool;
  job.progress = &o.progress;
  job.file = o.out_path;
  set_general(job.writer, "gemma4", name, o.type);
  set_decoder_keys(job.writer, "gemma4", m.config, m.config.n_ctx_train, m.config.final_softcap);
  set_tokenizer_keys(job.writer, dir, o.vocab_gguf, m.config.n_vocab);
  add_text_tensors(job, m, o.type, used);

  Job mm_job;
  const bool separate_mmproj = projector && !o.bundle && !o.no_mmproj;
  if (projector && o.bundle) {
    set_projector_keys(job.writer, *projector, m.config.n_embd, m.config.rms_eps, false);
    add_projector_tensors(job, st, m.config.n_embd, o.type, used);
  } else if (separate_mmproj) {
    mm_job.pool = &pool;
    mm_job.progress = &o.progress;
    mm_job.file = o.mmproj_out.empty() ? default_mmproj_path(o.out_path).string() : o.mmproj_out;
    set_general(mm_job.writer, "clip", name + "-mmproj", o.type);
    set_projector_keys(mm_job.writer, *projector, m.config.n_embd, m.config.rms_eps, true);
    add_projector_tensors(mm_job, st, m.config.n_embd, o.type, used);
    finish_general(mm_job.writer, o.type);
  } else if (projector) {
    const gemma4::ProjectorNames hf = gemma4::hf_projector_names(st);
    for (const std::string& n : {hf.ln1_w, hf.ln1_b, hf.dense_w, hf.dense_b, hf.ln2_w, hf.ln2_b,
                                 hf.pos, hf.ln3_w, hf.ln3_b, hf.proj, hf.audio_proj}) {
      ignorable.insert(n);
    }
  }
  std::set<std::string> drafter_used;
  if (drafter) {
    add_drafter(job, *drafter, drafter_config, o.assistant_dir, o.type,
                gemma4::kBundleDrafterPrefix, drafter_used);
    check_all_used(*drafter->safetensors, drafter_used, {});
  }
  finish_general(job.writer, o.type);
  check_all_used(st, used, ignorable);

  if (separate_mmproj && fs::absolute(mm_job.file) == fs::absolute(o.out_path)) {
    throw Error("convert: --mmproj-out is the same file as -o");
  }
  job.writer.write(o.out_path);
  written.push_back(o.out_path);
  if (separate_mmproj) {
    try {
      mm_job.writer.write(mm_job.file);
    } catch (...) {
      // Text without its projector would look complete: take it back.
      std::remove(o.out_path.c_str());
      throw;
    }
    written.push_back(mm_job.file);
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// GGUF -> GGUF

void quantize_gguf(const std::string& in_path, const std::string& out_path, const OutputType& ot,
                   int n_threads, bool allow_requantize, const ConvertProgress& progress) {
  if (fs::exists(in_path) && fs::exists(out_path) && fs::equivalent(in_path, out_path)) {
    throw Error(out_path + ": output is the input file");
  }
  auto file = gguf::File::open(in_path);
  const gguf::File& f = *file;
  const std::string arch = f.get_string("general.architecture");
  if (arch != "gemma4" && arch != "gemma4-assistant" && arch != "clip") {
    throw Error(in_path + ": metadata 'general.architecture': '" + arch +
                "' is not a Gemma 4 text model, drafter or projector");
  }
  ThreadPool pool(std::max(1, n_threads));
  Job job;
  job.pool = &pool;
  job.progress = &progress;
  job.file = out_path;
  for (const auto& kv : f.metadata()) {
    if (kv.key == "general.alignment" || kv.key == "general.quantization_version") continue;
    if (kv.key == "general.file_type") {
      job.writer.set_u32(kv.key, llama_file_type(ot));
    } else {
      job.writer.set(kv.key, kv.value);
    }
  }
  if (!f.has("general.file_type")) job.writer.set_u32("general.file_type", llama_file_type(ot));
  finish_general(job.writer, ot);

  // attn_v / ffn_down counts per decoder (text, bundled drafter).
  RoleCounter text_rc, drafter_rc;
  auto counter_for = [&](const std::string& name) -> RoleCounter& {
    return name.rfind(gemma4::kBundleDrafterPrefix, 0) == 0 ? drafter_rc : text_rc;
  };
  for (const auto& t : f.tensors()) {
    const TensorRole role = tensor_role_from_gguf_name(t.name, t.n_dims);
    if (role == TensorRole::kAttnV) ++counter_for(t.name).n_attn_v;
    if (role == TensorRole::kFfnDown) ++counter_for(t.name).n_ffn_down;
  }
  const gguf::File* fp = file.get();
  const Release release = [fp](const uint8_t* p, uint64_t n) { fp->release(p, n); };
  for (const auto& t : f.tensors()) {
    if (!tensor_type_supported(t.raw_type)) {
      throw Error(in_path + ": tensor '" + t.name + "': type " + tensor_type_name(t.raw_type) +
                  " is not supported");
    }
    const std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    const TensorRole role = tensor_role_from_gguf_name(t.name, t.n_dims);
    const auto [index, count] = counter_for(t.name).next(role);
    const TensorType type = choose_tensor_type(ot, role, t.ne[0], index, count);
    if (type == t.type) {
      job.add_copy(t.name, type, ne, t.data, t.n_bytes, release);
      continue;
    }
    if (!is_float_type(t.type) && !allow_requantize) {
      throw Error(in_path + ": tensor '" + t.name + "': already " + tensor_type_name(t.type) +
                  "; quantizing again loses quality (pass --allow-requantize, or start from "
                  "F32/F16/BF16)");
    }
    job.add_rows(t.name, type, ne,
                 plain_rows(t.type, t.data, t.ne[0], t.n_elements() / std::max<int64_t>(1, t.ne[0]),
                            release));
  }
  job.writer.write(out_path);
}

}  // namespace ug
