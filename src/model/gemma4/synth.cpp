#include "model/gemma4/synth.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include <nlohmann/json.hpp>
#include <vector>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "kernels/kernels.h"
#include "model/gemma4/tensor_names.h"
#include "util/error.h"

namespace ug::gemma4 {

namespace {

struct Shape {
  int n_embd, n_layer, n_head, n_kv_swa, n_kv_full, hd_swa, hd_full, n_ff, window, n_vocab;
  const char* name;
};
constexpr Shape kShape12B = {
    3840, 48, 16, 8, 1, 256, 512, 15360, 1024, 262144, "synthetic Gemma 4 12B"};
constexpr Shape kShapeTiny = {256, 6, 4, 2, 1, 64, 128, 1024, 16, 4198, "synthetic Gemma 4 tiny"};

// xoshiro256** — fast, seeded, identical on every platform.
struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    for (auto& x : s) {
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      x = z ^ (z >> 31);
    }
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
  float uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }
  // Approximately normal (sum of 4 uniforms, variance-corrected): cheap and good enough for
  // weights.
  float normal() {
    const float sum = uniform() + uniform() + uniform() + uniform() - 2.0f;
    return sum * 1.7320508f;
  }
};

uint16_t fp16_bits(float f) {
  uint16_t h;
  kernels::quantize_row(TensorType::F16, &f, &h, 1);
  return h;
}

// Fills n_bytes of random `type` data for a [rows x cols] matrix whose values have std `sigma`.
// Quantized blocks get random codes and scales picked so the dequantized std is about sigma.
void fill_random(TensorType type, int64_t cols, uint8_t* out, uint64_t n_bytes, float sigma,
                 Rng& rng) {
  const int64_t block_bytes = type_block_bytes(type);
  switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16: {
      std::vector<float> row(static_cast<size_t>(cols));
      const uint64_t row_bytes = uint64_t(type_row_bytes(type, cols));
      for (uint64_t off = 0; off < n_bytes; off += row_bytes) {
        for (auto& x : row) x = sigma * rng.normal();
        kernels::quantize_row(type, row.data(), out + off, cols);
      }
      return;
    }
    default:
      break;
  }
  // Random code bytes everywhere, then overwrite the fp16 scale fields with sane values.
  for (uint64_t off = 0; off + 8 <= n_bytes; off += 8) {
    const uint64_t r = rng.next();
    std::memcpy(out + off, &r, 8);
  }
  for (uint64_t off = n_bytes & ~uint64_t(7); off < n_bytes; ++off) out[off] = uint8_t(rng.next());
  const uint64_t n_blocks = n_bytes / uint64_t(block_bytes);
  for (uint64_t b = 0; b < n_blocks; ++b) {
    uint8_t* blk = out + b * uint64_t(block_bytes);
    const float jitter = 0.75f + 0.5f * rng.uniform();
    switch (type) {
      case TensorType::Q8_0: {  // (d, int8[32]): uniform int8 has std ~73.9
        const uint16_t d = fp16_bits(sigma / 73.9f * jitter);
        std::memcpy(blk, &d, 2);
        break;
      }
      case TensorType::Q4_0: {  // (d, nibbles): (q - 8) has std ~4.6
        const uint16_t d = fp16_bits(sigma / 4.6f * jitter);
        std::memcpy(blk, &d, 2);
        break;
      }
      case TensorType::Q4_K:
      case TensorType::Q5_K: {  // (d, dmin, 6-bit scales/mins, codes)
        const float levels = type == TensorType::Q4_K ? 4.6f : 9.2f;
        const uint16_t d = fp16_bits(sigma / (levels * 32.0f) * jitter);
        const uint16_t dmin = fp16_bits(sigma / (levels * 64.0f) * jitter);
        std::memcpy(blk, &d, 2);
        std::memcpy(blk + 2, &dmin, 2);
        break;
      }
      case TensorType::Q6_K: {  // (ql, qh, int8 scales[16], d): codes - 32 have std ~18.5
        int8_t* scales = reinterpret_cast<int8_t*>(blk + 192);
        for (int i = 0; i < 16; ++i) scales[i] = int8_t(16 + int(rng.next() % 16));
        const uint16_t d = fp16_bits(sigma / (18.5f * 24.0f) * jitter);
        std::memcpy(blk + 208, &d, 2);
        break;
      }
      default:
        throw Error("synth: tensor type " + tensor_type_name(type) + " is not supported");
    }
  }
}

std::vector<std::string> synthetic_vocab(const Shape& s, std::vector<int32_t>* types) {
  std::vector<std::string> tokens(static_cast<size_t>(s.n_vocab));
  types->assign(size_t(s.n_vocab), 5);  // unused
  auto put = [&](int id, const std::string& text, int type) {
    tokens[size_t(id)] = text;
    (*types)[size_t(id)] = type;
  };
  for (int i = 0; i < s.n_vocab; ++i) tokens[size_t(i)] = "<unused" + std::to_string(i) + ">";
  const int kControl = 3, kUserDefined = 4, kNormal = 1, kByte = 6;
  put(0, "<pad>", kControl);
  put(1, "<eos>", kControl);
  put(2, "<bos>", kControl);
  put(3, "<unk>", 2);
  put(4, "<mask>", kControl);
  put(46, "<|tool>", kControl);
  put(47, "<tool|>", kControl);
  put(48, "<|tool_call>", kUserDefined);
  put(49, "<tool_call|>", kUserDefined);
  put(50, "<|tool_response>", kControl);
  put(51, "<tool_response|>", kUserDefined);
  put(52, "<|\"|>", kUserDefined);
  put(98, "<|think|>", kControl);
  put(100, "<|channel>", kUserDefined);
  put(101, "<channel|>", kUserDefined);
  put(105, "<|turn>", kControl);
  put(106, "<turn|>", kControl);
  put(107, "\n", kNormal);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    put(238 + b, name, kByte);
  }
  put(4096, "\xE2\x96\x81", kNormal);  // ▁ (space)
  for (int c = 33; c <= 126; ++c) put(4097 + c - 33, std::string(1, char(c)), kNormal);
  // Multimodal markers: at their real ids in a full vocabulary, at the end of a small one.
  const bool real = s.n_vocab >= 258885;
  const int boi = real ? 255999 : s.n_vocab - 7;
  put(boi, "<|image>", kControl);
  put(real ? 256000 : s.n_vocab - 5, "<|audio>", kControl);
  put(real ? 258882 : s.n_vocab - 6, "<image|>", kControl);
  put(real ? 258883 : s.n_vocab - 4, "<audio|>", kControl);
  put(real ? 258880 : s.n_vocab - 3, "<|image|>", kControl);
  put(real ? 258881 : s.n_vocab - 2, "<|audio|>", kControl);
  put(real ? 258884 : s.n_vocab - 1, "<|video|>", kControl);
  return tokens;
}

// The drafter of each shape (spec §4.1; README-mtp.md for the tiny one). Its 4 layers are
// [sliding x 3, full] and read the target's KV, so head_dim / KV heads are the target's.
struct DrafterShape {
  int n_embd, n_layer, n_head, n_ff;
  const char* name;
};
constexpr DrafterShape kDrafter12B = {1024, 4, 16, 8192, "synthetic Gemma 4 12B assistant"};
constexpr DrafterShape kDrafterTiny = {128, 4, 4, 512, "synthetic Gemma 4 tiny assistant"};

// Random matrices and fixed vectors for a GGUF writer. Every matrix draws from its own stream, so
// a file does not depend on the order tensors are written in.
struct RandomTensors {
  RandomTensors(gguf::Writer& writer, uint64_t seed) : w(writer), seed(seed), small(seed) {}
  void matrix(const std::string& name, TensorType type, int64_t cols, int64_t rows, float sigma) {
    const uint64_t s = seed * 1000003ull + (++stream);
    w.add_tensor(name, type, {cols, rows}, [type, cols, sigma, s](uint8_t* out, uint64_t n) {
      Rng rng(s);
      fill_random(type, cols, out, n, sigma, rng);
    });
  }
  void vector(const std::string& name, std::vector<float> values) {
    auto data = std::make_shared<std::vector<float>>(std::move(values));
    w.add_tensor(name, TensorType::F32, {int64_t(data->size())},
                 [data](uint8_t* out, uint64_t n) { std::memcpy(out, data->data(), n); });
  }
  std::vector<float> norm_weights(int n, float scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = (1.0f + 0.1f * small.normal()) * scale;
    return v;
  }
  gguf::Writer& w;
  uint64_t seed;
  uint64_t stream = 0;
  Rng small;  // norms and scalars
};

const Shape& shape_named(const std::string& name) {
  if (name == "12b") return kShape12B;
  if (name == "tiny") return kShapeTiny;
  throw Error("synth: unknown shape '" + name + "' (12b or tiny)");
}

// The named shape, cut to its first `layers` decoder layers when that is set: a slice keeps the
// 5 sliding : 1 full pattern, every per-layer tensor and the tied embedding / LM head, so a
// 6-layer slice of the 12B benchmarks an eighth of its layers plus its whole head.
Shape shape_of(const SynthOptions& o) {
  Shape s = shape_named(o.shape);
  if (o.layers < 0 || o.layers > s.n_layer) {
    throw Error("synth: --layers " + std::to_string(o.layers) + " is outside 1.." +
                std::to_string(s.n_layer) + " for shape '" + o.shape + "'");
  }
  if (o.layers > 0) s.n_layer = o.layers;
  return s;
}

}  // namespace

void write_synthetic_model(const SynthOptions& o, const std::string& path) {
  if (o.drafter) {
    write_synthetic_drafter(o, path);
    return;
  }
  const Shape s = shape_of(o);
  const TensorType t = o.type;
  if (!tensor_type_supported(uint32_t(t))) {
    throw Error("synth: tensor type " + tensor_type_name(t) + " is not supported");
  }
  const TensorType embd_type = t == TensorType::Q4_0 ? TensorType::Q6_K : t;
  const bool text = o.content != SynthOptions::Content::kProjector;
  const bool projector = o.content != SynthOptions::Content::kText;

  gguf::Writer w;
  RandomTensors r(w, o.seed);
  auto matrix = [&r](const std::string& name, TensorType type, int64_t cols, int64_t rows,
                     float sigma) { r.matrix(name, type, cols, rows, sigma); };
  auto vector = [&r](const std::string& name, std::vector<float> v) {
    r.vector(name, std::move(v));
  };
  auto norm_weights = [&r](int n, float scale) { return r.norm_weights(n, scale); };
  Rng& small = r.small;
  auto biases = [&](int n, float scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = scale * small.normal();
    return v;
  };
  if (projector) {
    // Spec §7.3: metadata and tensors of the gemma4uv/gemma4ua mmproj; mm_embed_dim = n_embd as in
    // the 12B (3840).
    const int n_mm = s.n_embd, n_pos = 1120, patch = 48 * 48 * 3;
    const TensorType mt = t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16
                              ? t
                              : TensorType::BF16;
    if (!text) {
      w.set_string("general.architecture", "clip");
      w.set_string("general.name", std::string(s.name) + " projector");
      w.set_u32("general.file_type", uint32_t(mt));
    }
    w.set_bool("clip.has_vision_encoder", true);
    w.set_bool("clip.has_audio_encoder", true);
    w.set_string("clip.vision.projector_type", "gemma4uv");
    w.set_string("clip.audio.projector_type", "gemma4ua");
    w.set_u32("clip.vision.patch_size", 16);
    w.set_u32("clip.vision.image_size", 224);
    w.set_u32("clip.vision.embedding_length", uint32_t(n_mm));
    w.set_u32("clip.vision.projection_dim", uint32_t(s.n_embd));
    w.set_u32("clip.vision.block_count", 0);
    w.set_u32("clip.vision.feed_forward_length", 0);
    w.set_u32("clip.vision.attention.head_count", 0);
    w.set_f32("clip.vision.attention.layer_norm_epsilon", 1e-6f);
    w.set_f32_array("clip.vision.image_mean", {0.0f, 0.0f, 0.0f});
    w.set_f32_array("clip.vision.image_std", {1.0f, 1.0f, 1.0f});
    w.set_u32("clip.audio.embedding_length", 640);
    w.set_u32("clip.audio.projection_dim", uint32_t(s.n_embd));
    w.set_u32("clip.audio.num_mel_bins", 128);
    w.set_u32("clip.audio.block_count", 0);
    w.set_u32("clip.audio.feed_forward_length", 0);
    w.set_u32("clip.audio.attention.head_count", 0);
    w.set_f32("clip.audio.attention.layer_norm_epsilon", 1e-6f);
    vector("v.patch_norm.1.weight", norm_weights(patch, 1.0f));
    vector("v.patch_norm.1.bias", biases(patch, 0.02f));
    matrix("v.patch_embd.weight", mt, patch, n_mm, 1.0f / std::sqrt(float(patch)));
    vector("v.patch_embd.bias", biases(n_mm, 0.02f));
    vector("v.patch_norm.2.weight", norm_weights(n_mm, 1.0f));
    vector("v.patch_norm.2.bias", biases(n_mm, 0.02f));
    {
      const uint64_t seed = o.seed * 1000003ull + (++r.stream);
      w.add_tensor("v.position_embd.weight", TensorType::F32, {n_mm, n_pos, 2},
                   [seed](uint8_t* out, uint64_t n) {
                     Rng rng(seed);
                     auto* f = reinterpret_cast<float*>(out);
                     for (uint64_t i = 0; i < n / 4; ++i) f[i] = 0.5f * rng.normal();
                   });
    }
    vector("v.patch_norm.3.weight", norm_weights(n_mm, 1.0f));
    vector("v.patch_norm.3.bias", biases(n_mm, 0.02f));
    matrix("mm.input_projection.weight", mt, n_mm, s.n_embd, 1.0f / std::sqrt(float(n_mm)));
    matrix("mm.a.input_projection.weight", mt, 640, s.n_embd, 1.0f / std::sqrt(640.0f));
    if (!text) {
      w.write(path);
      return;
    }
  }

  w.set_string("general.architecture", "gemma4");
  w.set_string("general.name", s.name);
  w.set_u32("general.file_type", uint32_t(t));
  w.set_u32("gemma4.block_count", uint32_t(s.n_layer));
  w.set_u32("gemma4.context_length", 262144);
  w.set_u32("gemma4.embedding_length", uint32_t(s.n_embd));
  w.set_u32("gemma4.feed_forward_length", uint32_t(s.n_ff));
  w.set_u32("gemma4.attention.head_count", uint32_t(s.n_head));
  std::vector<int32_t> kv(static_cast<size_t>(s.n_layer));
  std::vector<bool> pattern(static_cast<size_t>(s.n_layer));
  for (int i = 0; i < s.n_layer; ++i) {
    const bool sliding = (i % 6) != 5;
    pattern[size_t(i)] = sliding;
    kv[size_t(i)] = sliding ? s.n_kv_swa : s.n_kv_full;
  }
  w.set_i32_array("gemma4.attention.head_count_kv", kv);
  w.set_u32("gemma4.attention.key_length", uint32_t(s.hd_full));
  w.set_u32("gemma4.attention.value_length", uint32_t(s.hd_full));
  w.set_u32("gemma4.attention.key_length_swa", uint32_t(s.hd_swa));
  w.set_u32("gemma4.attention.value_length_swa", uint32_t(s.hd_swa));
  w.set_u32("gemma4.attention.sliding_window", uint32_t(s.window));
  w.set_bool_array("gemma4.attention.sliding_window_pattern", pattern);
  w.set_u32("gemma4.attention.shared_kv_layers", 0);
  w.set_f32("gemma4.attention.layer_norm_rms_epsilon", 1e-6f);
  w.set_u32("gemma4.embedding_length_per_layer_input", 0);
  w.set_f32("gemma4.final_logit_softcapping", 30.0f);
  w.set_u32("gemma4.rope.dimension_count", uint32_t(s.hd_full));
  w.set_u32("gemma4.rope.dimension_count_swa", uint32_t(s.hd_swa));
  w.set_f32("gemma4.rope.freq_base", 1e6f);
  w.set_f32("gemma4.rope.freq_base_swa", 1e4f);

  std::vector<int32_t> token_types;
  std::vector<std::string> tokens = synthetic_vocab(s, &token_types);
  std::vector<float> scores(tokens.size(), -1000.0f);
  const bool real = s.n_vocab >= 258885;
  w.set_string("tokenizer.ggml.model", "gemma4");
  w.set_string("tokenizer.ggml.pre", "gemma4");
  w.set_string_array("tokenizer.ggml.tokens", std::move(tokens));
  w.set_f32_array("tokenizer.ggml.scores", scores);
  w.set_i32_array("tokenizer.ggml.token_type", token_types);
  w.set_string_array("tokenizer.ggml.merges", {});
  w.set_u32("tokenizer.ggml.bos_token_id", 2);
  w.set_u32("tokenizer.ggml.eos_token_id", 1);
  w.set_u32("tokenizer.ggml.unknown_token_id", 3);
  w.set_u32("tokenizer.ggml.padding_token_id", 0);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  w.set_i32_array("tokenizer.ggml.suppress_tokens",
                  {real ? 258883 : s.n_vocab - 4, real ? 258882 : s.n_vocab - 6});

  matrix("token_embd.weight", embd_type, s.n_embd, s.n_vocab, 1.0f / std::sqrt(float(s.n_embd)));
  vector("output_norm.weight", norm_weights(s.n_embd, 1.0f));
  std::vector<float> rope_freqs(size_t(s.hd_full / 2), 1e30f);
  for (int j = 0; j < s.hd_full / 8; ++j) rope_freqs[size_t(j)] = 1.0f;  // factor 0.25 of the pairs
  vector("rope_freqs.weight", rope_freqs);
  const float fan_embd = 1.0f / std::sqrt(float(s.n_embd));
  for (int i = 0; i < s.n_layer; ++i) {
    const bool sliding = pattern[size_t(i)];
    const int hd = sliding ? s.hd_swa : s.hd_full;
    const int n_kv = sliding ? s.n_kv_swa : s.n_kv_full;
    const std::string p = "blk." + std::to_string(i) + ".";
    vector(p + "attn_norm.weight", norm_weights(s.n_embd, 1.0f));
    matrix(p + "attn_q.weight", t, s.n_embd, int64_t(s.n_head) * hd, fan_embd);
    matrix(p + "attn_k.weight", t, s.n_embd, int64_t(n_kv) * hd, fan_embd);
    if (sliding) matrix(p + "attn_v.weight", t, s.n_embd, int64_t(n_kv) * hd, fan_embd);
    matrix(p + "attn_output.weight", t, int64_t(s.n_head) * hd, s.n_embd,
           1.0f / std::sqrt(float(s.n_head * hd)));
    // q/k norm weights scaled by head_dim^-1/4 keep random attention from being one-hot.
    const float qk_scale = std::pow(float(hd), -0.25f);
    vector(p + "attn_q_norm.weight", norm_weights(hd, qk_scale));
    vector(p + "attn_k_norm.weight", norm_weights(hd, qk_scale));
    vector(p + "post_attention_norm.weight", norm_weights(s.n_embd, 1.0f));
    vector(p + "ffn_norm.weight", norm_weights(s.n_embd, 1.0f));
    matrix(p + "ffn_gate.weight", t, s.n_embd, s.n_ff, fan_embd);
    matrix(p + "ffn_up.weight", t, s.n_embd, s.n_ff, fan_embd);
    matrix(p + "ffn_down.weight", t, s.n_ff, s.n_embd, 1.0f / std::sqrt(float(s.n_ff)));
    vector(p + "post_ffw_norm.weight", norm_weights(s.n_embd, 1.0f));
    vector(p + "layer_output_scale.weight", {0.5f + 0.5f * small.uniform()});
  }
  w.write(path);
}

namespace {

void write_json(const std::filesystem::path& p, const nlohmann::json& j) {
  const std::string tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << j.dump(2) << "\n";
    if (!out) throw Error(tmp + ": write failed");
  }
  std::filesystem::rename(tmp, p);
}

}  // namespace

void write_synthetic_hf(const SynthOptions& o, const std::string& dir_name) {
  using nlohmann::json;
  const Shape s = shape_of(o);
  const TensorType t = o.type;
  const char* dtype = t == TensorType::F32    ? "F32"
                      : t == TensorType::F16  ? "F16"
                      : t == TensorType::BF16 ? "BF16"
                                              : nullptr;
  if (!dtype)
    throw Error("synth: safetensors output takes f32, f16 or bf16 (not " + tensor_type_name(t) +
                ")");
  const std::filesystem::path dir(dir_name);
  std::filesystem::create_directories(dir);

  // config.json / generation_config.json
  json layer_types = json::array();
  for (int i = 0; i < s.n_layer; ++i) {
    layer_types.push_back((i % 6) != 5 ? "sliding_attention" : "full_attention");
  }
  const bool real = s.n_vocab >= 258885;
  const int boi = real ? 255999 : s.n_vocab - 7;
  json text = {{"model_type", "gemma4_unified_text"},
               {"hidden_size", s.n_embd},
               {"intermediate_size", s.n_ff},
               {"num_hidden_layers", s.n_layer},
               {"num_attention_heads", s.n_head},
               {"num_key_value_heads", s.n_kv_swa},
               {"num_global_key_value_heads", s.n_kv_full},
               {"head_dim", s.hd_swa},
               {"global_head_dim", s.hd_full},
               {"layer_types", layer_types},
               {"sliding_window", s.window},
               {"max_position_embeddings", 262144},
               {"rms_norm_eps", 1e-6},
               {"final_logit_softcapping", 30.0},
               {"rope_parameters",
                {{"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}},
                 {"full_attention",
                  {{"rope_type", "proportional"},
                   {"partial_rotary_factor", 0.25},
                   {"rope_theta", 1000000.0}}}}},
               {"attention_k_eq_v", true},
               {"tie_word_embeddings", true},
               {"hidden_activation", "gelu_pytorch_tanh"},
               {"vocab_size", s.n_vocab}};
  json config = {
      {"architectures", {"Gemma4UnifiedForConditionalGeneration"}},
      {"model_type", "gemma4_unified"},
      {"_name_or_path", o.shape == "12b" ? "synthetic-gemma4-12b" : "synthetic-gemma4-tiny"},
      {"text_config", text},
      {"tie_word_embeddings", true},
      {"boi_token_id", boi},
      {"torch_dtype", t == TensorType::F32   ? "float32"
                      : t == TensorType::F16 ? "float16"
                                             : "bfloat16"}};
  const int suppress_a = real ? 258883 : s.n_vocab - 4, suppress_b = real ? 258882 : s.n_vocab - 6;
  write_json(dir / "config.json", config);
  write_json(dir / "generation_config.json", {{"bos_token_id", 2},
                                              {"pad_token_id", 0},
                                              {"eos_token_id", {1, 106, 50}},
                                              {"suppress_tokens", {suppress_a, suppress_b}}});

  // tokenizer.json / tokenizer_config.json for the synthetic vocabulary.
  std::vector<int32_t> token_types;
  const std::vector<std::string> tokens = synthetic_vocab(s, &token_types);
  json vocab = json::object();
  json added = json::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    vocab[tokens[id]] = id;
    if (token_types[id] == 3 || token_types[id] == 4 || token_types[id] == 2) {
      added.push_back({{"id", id}, {"content", tokens[id]}, {"special", token_types[id] != 4}});
    }
  }
  write_json(
      dir / "tokenizer.json",
      {{"model",
        {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}, {"byte_fallback", true}}},
       {"added_tokens", added}});
  write_json(dir / "tokenizer_config.json", {{"bos_token", "<bos>"},
                                             {"eos_token", "<eos>"},
                                             {"unk_token", "<unk>"},
                                             {"pad_token", "<pad>"},
                                             {"add_bos_token", true}});

  // Tensors, HF names and shapes; every tensor has its own random stream.
  struct Planned {
    std::string name;
    std::vector<int64_t> shape;                  // HF order
    float sigma;                                 // random N(0, sigma), or
    std::shared_ptr<std::vector<float>> values;  // fixed values
    uint64_t seed;
  };
  std::vector<Planned> plan;
  uint64_t stream = 0;
  Rng small(o.seed);
  auto matrix = [&](const std::string& name, std::vector<int64_t> shape, float sigma) {
    plan.push_back({name, std::move(shape), sigma, nullptr, o.seed * 1000003ull + (++stream)});
  };
  auto vector = [&](const std::string& name, std::vector<float> v) {
    const int64_t n = int64_t(v.size());
    plan.push_back({name, {n}, 0, std::make_shared<std::vector<float>>(std::move(v)), 0});
  };
  auto norm_weights = [&](int n, float scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = (1.0f + 0.1f * small.normal()) * scale;
    return v;
  };
  const std::string p = "model.language_model.";
  const float fan_embd = 1.0f / std::sqrt(float(s.n_embd));
  matrix(p + "embed_tokens.weight", {s.n_vocab, s.n_embd}, fan_embd);
  vector(p + "norm.weight", norm_weights(s.n_embd, 1.0f));
  for (int i = 0; i < s.n_layer; ++i) {
    const bool sliding = (i % 6) != 5;
    const int hd = sliding ? s.hd_swa : s.hd_full;
    const int n_kv = sliding ? s.n_kv_swa : s.n_kv_full;
    auto n = [&](LayerTensor lt) { return hf_layer_tensor(p, i, lt); };
    const float qk_scale = std::pow(float(hd), -0.25f);
    vector(n(LayerTensor::kAttnNorm), norm_weights(s.n_embd, 1.0f));
    matrix(n(LayerTensor::kQ), {int64_t(s.n_head) * hd, s.n_embd}, fan_embd);
    matrix(n(LayerTensor::kK), {int64_t(n_kv) * hd, s.n_embd}, fan_embd);
    if (sliding) matrix(n(LayerTensor::kV), {int64_t(n_kv) * hd, s.n_embd}, fan_embd);
    matrix(n(LayerTensor::kO), {s.n_embd, int64_t(s.n_head) * hd},
           1.0f / std::sqrt(float(s.n_head * hd)));
    vector(n(LayerTensor::kQNorm), norm_weights(hd, qk_scale));
    vector(n(LayerTensor::kKNorm), norm_weights(hd, qk_scale));
    vector(n(LayerTensor::kPostAttnNorm), norm_weights(s.n_embd, 1.0f));
    vector(n(LayerTensor::kFfnNorm), norm_weights(s.n_embd, 1.0f));
    matrix(n(LayerTensor::kGate), {s.n_ff, s.n_embd}, fan_embd);
    matrix(n(LayerTensor::kUp), {s.n_ff, s.n_embd}, fan_embd);
    matrix(n(LayerTensor::kDown), {s.n_embd, s.n_ff}, 1.0f / std::sqrt(float(s.n_ff)));
    vector(n(LayerTensor::kPostFfwNorm), norm_weights(s.n_embd, 1.0f));
    vector(n(LayerTensor::kOutputScale), {0.5f + 0.5f * small.uniform()});
  }
  // Vision and audio embedders (spec §7.1), mm width = text width as on the 12B.
  const int64_t patch = 48 * 48 * 3, n_mm = s.n_embd, n_pos = 1120;
  const std::string v = "model.vision_embedder.";
  vector(v + "patch_ln1.weight", norm_weights(int(patch), 1.0f));
  vector(v + "patch_ln1.bias", norm_weights(int(patch), 0.1f));
  matrix(v + "patch_dense.weight", {n_mm, patch}, 1.0f / std::sqrt(float(patch)));
  vector(v + "patch_dense.bias", norm_weights(int(n_mm), 0.1f));
  vector(v + "patch_ln2.weight", norm_weights(int(n_mm), 1.0f));
  vector(v + "patch_ln2.bias", norm_weights(int(n_mm), 0.1f));
  matrix(v + "pos_embedding", {n_pos, 2, n_mm}, 0.5f);
  vector(v + "pos_norm.weight", norm_weights(int(n_mm), 1.0f));
  vector(v + "pos_norm.bias", norm_weights(int(n_mm), 0.1f));
  matrix("model.embed_vision.embedding_projection.weight", {s.n_embd, n_mm},
         1.0f / std::sqrt(float(n_mm)));
  matrix("model.embed_audio.embedding_projection.weight", {s.n_embd, 640},
         1.0f / std::sqrt(640.0f));

  // Shards of at most ~4 GB, in plan order.
  const uint64_t kShardBytes = uint64_t(4) << 30;
  const int64_t elem = t == TensorType::F32 ? 4 : 2;
  std::vector<std::vector<const Planned*>> shards(1);
  uint64_t in_shard = 0, total = 0;
  for (const Planned& pl : plan) {
    uint64_t bytes = uint64_t(elem);
    for (int64_t d : pl.shape) bytes *= uint64_t(d);
    if (in_shard > 0 && in_shard + bytes > kShardBytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().push_back(&pl);
    in_shard += bytes;
    total += bytes;
  }
  json weight_map = json::object();
  for (size_t k = 0; k < shards.size(); ++k) {
    char file[64];
    std::snprintf(file, sizeof file, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    SafetensorsWriter w;
    w.set_metadata("format", "pt");
    for (const Planned* pl : shards[k]) {
      weight_map[pl->name] = file;
      const int64_t cols = pl->shape.back();
      w.add(pl->name, dtype, pl->shape, [pl, t, cols](const SafetensorsWriter::Emit& emit) {
        if (pl->values) {
          std::vector<uint8_t> out(size_t(type_row_bytes(t, int64_t(pl->values->size()))));
          kernels::quantize_row(t, pl->values->data(), out.data(), int64_t(pl->values->size()));
          emit(out.data(), out.size());
          return;
        }
        int64_t rows = 1;
        for (size_t d = 0; d + 1 < pl->shape.size(); ++d) rows *= pl->shape[d];
        Rng rng(pl->seed);
        std::vector<float> row(static_cast<size_t>(cols));
        const int64_t rb = type_row_bytes(t, cols);
        const int64_t chunk = std::max<int64_t>(1, (int64_t(4) << 20) / rb);
        std::vector<uint8_t> out(size_t(std::min(chunk, rows) * rb));
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
          const int64_t r1 = std::min(rows, r0 + chunk);
          for (int64_t r = r0; r < r1; ++r) {
            for (auto& x : row) x = pl->sigma * rng.normal();
            kernels::quantize_row(t, row.data(), out.data() + (r - r0) * rb, cols);
          }
          emit(out.data(), uint64_t((r1 - r0) * rb));
        }
      });
    }
    w.write((dir / file).string());
  }
  write_json(dir / "model.safetensors.index.json",
             {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
}

void write_synthetic_drafter(const SynthOptions& o, const std::string& path) {
  const Shape& s = shape_named(o.shape);
  const DrafterShape& d = o.shape == "12b" ? kDrafter12B : kDrafterTiny;
  const TensorType t = o.type;
  if (!tensor_type_supported(uint32_t(t))) {
    throw Error("synth: tensor type " + tensor_type_name(t) + " is not supported");
  }
  const TensorType embd_type = t == TensorType::Q4_0 ? TensorType::Q6_K : t;
  const std::string a = "gemma4-assistant.";
  gguf::Writer w;
  w.set_string("general.architecture", "gemma4-assistant");
  w.set_string("general.name", d.name);
  w.set_u32("general.file_type", uint32_t(t));
  w.set_u32(a + "context_length", 262144);
  w.set_u32(a + "embedding_length", uint32_t(d.n_embd));
  w.set_u32(a + "embedding_length_out", uint32_t(s.n_embd));
  w.set_u32(a + "block_count", uint32_t(d.n_layer));
  w.set_u32(a + "nextn_predict_layers", uint32_t(d.n_layer));
  w.set_u32(a + "feed_forward_length", uint32_t(d.n_ff));
  w.set_u32(a + "attention.head_count", uint32_t(d.n_head));
  std::vector<int32_t> kv(size_t(d.n_layer));
  std::vector<bool> pattern(size_t(d.n_layer));
  for (int i = 0; i < d.n_layer; ++i) {
    pattern[size_t(i)] = i + 1 < d.n_layer;  // the last layer is the full one
    kv[size_t(i)] = pattern[size_t(i)] ? s.n_kv_swa : s.n_kv_full;
  }
  w.set_i32_array(a + "attention.head_count_kv", kv);
  w.set_u32(a + "attention.key_length", uint32_t(s.hd_full));
  w.set_u32(a + "attention.value_length", uint32_t(s.hd_full));
  w.set_u32(a + "attention.key_length_swa", uint32_t(s.hd_swa));
  w.set_u32(a + "attention.value_length_swa", uint32_t(s.hd_swa));
  w.set_u32(a + "attention.sliding_window", uint32_t(s.window));
  w.set_bool_array(a + "attention.sliding_window_pattern", pattern);
  w.set_f32(a + "attention.layer_norm_rms_epsilon", 1e-6f);
  w.set_f32(a + "final_logit_softcapping", 30.0f);  // copied metadata, never applied to drafts
  w.set_u32(a + "rope.dimension_count", uint32_t(s.hd_full));
  w.set_u32(a + "rope.dimension_count_swa", uint32_t(s.hd_swa));
  w.set_f32(a + "rope.freq_base", 1e6f);
  w.set_f32(a + "rope.freq_base_swa", 1e4f);

  RandomTensors r(w, o.seed ^ 0xD3AF7ull);
  auto matrix = [&r](const std::string& name, TensorType type, int64_t cols, int64_t rows,
                     float sigma) { r.matrix(name, type, cols, rows, sigma); };
  auto vector = [&r](const std::string& name, std::vector<float> v) {
    r.vector(name, std::move(v));
  };
  auto norm_weights = [&r](int n, float scale) { return r.norm_weights(n, scale); };
  Rng& small = r.small;
  const float fan = 1.0f / std::sqrt(float(d.n_embd));
  matrix("token_embd.weight", embd_type, d.n_embd, s.n_vocab, fan);
  vector("output_norm.weight", norm_weights(d.n_embd, 1.0f));
  matrix("nextn.pre_projection.weight", t, 2 * int64_t(s.n_embd), d.n_embd,
         1.0f / std::sqrt(float(2 * s.n_embd)));
  matrix("nextn.post_projection.weight", t, d.n_embd, s.n_embd, fan);
  std::vector<float> rope_freqs(size_t(s.hd_full / 2), 1e30f);
  for (int j = 0; j < s.hd_full / 8; ++j) rope_freqs[size_t(j)] = 1.0f;
  vector("rope_freqs.weight", rope_freqs);
  for (int i = 0; i < d.n_layer; ++i) {
    const int hd = pattern[size_t(i)] ? s.hd_swa : s.hd_full;
    const std::string p = "blk." + std::to_string(i) + ".";
    vector(p + "attn_norm.weight", norm_weights(d.n_embd, 1.0f));
    matrix(p + "attn_q.weight", t, d.n_embd, int64_t(d.n_head) * hd, fan);
    vector(p + "attn_q_norm.weight", norm_weights(hd, std::pow(float(hd), -0.25f)));
    matrix(p + "attn_output.weight", t, int64_t(d.n_head) * hd, d.n_embd,
           1.0f / std::sqrt(float(d.n_head * hd)));
    vector(p + "post_attention_norm.weight", norm_weights(d.n_embd, 1.0f));
    vector(p + "ffn_norm.weight", norm_weights(d.n_embd, 1.0f));
    matrix(p + "ffn_gate.weight", t, d.n_embd, d.n_ff, fan);
    matrix(p + "ffn_up.weight", t, d.n_embd, d.n_ff, fan);
    matrix(p + "ffn_down.weight", t, d.n_ff, d.n_embd, 1.0f / std::sqrt(float(d.n_ff)));
    vector(p + "post_ffw_norm.weight", norm_weights(d.n_embd, 1.0f));
    vector(p + "layer_output_scale.weight", {0.5f + 0.5f * small.uniform()});
  }
  w.write(path);
}

}  // namespace ug::gemma4
