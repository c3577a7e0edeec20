#include "model/gemma4/projector.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "model/gemma4/model_loading.h"
#include "model/gemma4/tensor_names.h"
#include "util/error.h"

namespace ug::gemma4 {

namespace {

using Names = ProjectorNames;

// Fills the embedders from whichever tensors exist. `gguf_layout`: ggml shapes as in spec §7.3
// (CHW patch columns, axis-major position table); otherwise HF shapes.
void fill(Projector& p, const TensorLookup& lookup, const Names& n, bool gguf_layout, int n_embd,
          const std::string& source) {
  if (lookup(n.dense_w)) {
    VisionEmbedder v;
    v.chw_columns = gguf_layout;
    v.pos_axis_major = gguf_layout;
    const TensorRef dense = require_tensor(lookup, n.dense_w, source);
    if (dense.ne.size() != 2 || dense.ne[0] != v.patch_values || dense.ne[1] <= 0 ||
        dense.ne[1] > (1 << 16)) {
      throw Error(dense.source + ": tensor '" + n.dense_w +
                  "': expected shape {6912, mm_embed_dim}");
    }
    v.n_mm = int(dense.ne[1]);
    v.n_out = n_embd;
    v.dense = load_matrix(lookup, n.dense_w, v.patch_values, v.n_mm, source);
    v.proj = load_matrix(lookup, n.proj, v.n_mm, n_embd, source);
    v.ln1_w = load_vector(require_tensor(lookup, n.ln1_w, source), v.patch_values);
    v.ln1_b = load_vector(require_tensor(lookup, n.ln1_b, source), v.patch_values);
    v.dense_b = load_vector(require_tensor(lookup, n.dense_b, source), v.n_mm);
    v.ln2_w = load_vector(require_tensor(lookup, n.ln2_w, source), v.n_mm);
    v.ln2_b = load_vector(require_tensor(lookup, n.ln2_b, source), v.n_mm);
    v.ln3_w = load_vector(require_tensor(lookup, n.ln3_w, source), v.n_mm);
    v.ln3_b = load_vector(require_tensor(lookup, n.ln3_b, source), v.n_mm);
    const TensorRef pos = require_tensor(lookup, n.pos, source);
    // ggml order: GGUF {n_mm, n_pos, 2}; HF [n_pos, 2, n_mm] -> {n_mm, 2, n_pos}.
    const bool ok = pos.ne.size() == 3 && pos.ne[0] == v.n_mm &&
                    (gguf_layout ? pos.ne[2] == 2 : pos.ne[1] == 2);
    if (!ok) {
      throw Error(pos.source + ": tensor '" + n.pos + "': unexpected shape for the position table");
    }
    v.n_pos = int(gguf_layout ? pos.ne[1] : pos.ne[2]);
    if (pos.type != TensorType::F32 && pos.type != TensorType::F16 &&
        pos.type != TensorType::BF16) {
      throw Error(pos.source + ": tensor '" + n.pos + "': type " + pos.type_name +
                  " not allowed (F32, F16 or BF16)");
    }
    v.pos.type = pos.type;
    v.pos.data = pos.data;
    v.pos.rows = int64_t(v.n_pos) * 2;
    v.pos.cols = v.n_mm;
    v.pos.row_bytes = type_row_bytes(pos.type, v.n_mm);
    p.vision = std::move(v);
  }
  if (lookup(n.audio_proj)) {
    AudioEmbedder a;
    a.n_out = n_embd;
    a.proj = load_matrix(lookup, n.audio_proj, a.frame, n_embd, source);
    p.audio = std::move(a);
  }
}

TensorLookup gguf_lookup(const gguf::File& f) {
  return [&f](const std::string& name) -> std::optional<TensorRef> {
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
    r.source = f.path();
    return r;
  };
}

TensorLookup st_lookup(Projector& p, const SafetensorsModel& st) {
  return [&p, &st](const std::string& name) -> std::optional<TensorRef> {
    const StTensor* t = st.find(name);
    if (!t) return std::nullopt;
    TensorRef r;
    r.name = name;
    r.source = t->file;
    r.type_name = t->dtype;
    r.supported = st_dtype_to_tensor_type(t->dtype, &r.type);
    r.raw_type = uint32_t(r.type);
    r.ne.assign(t->shape.rbegin(), t->shape.rend());
    r.data = t->data;
    r.n_bytes = t->n_bytes;
    const int64_t elem = st_dtype_size(t->dtype);
    if (elem > 1 && reinterpret_cast<uintptr_t>(r.data) % uintptr_t(elem) != 0) {
      auto& copy = p.owned.emplace_back(t->data, t->data + t->n_bytes);
      r.data = copy.data();
    }
    return r;
  };
}

// Range only: which budgets the preprocessing supports is the media layer's business.
int checked_image_tokens(int64_t v, const std::string& where) {
  if (v < 1 || v > 1120) {
    throw Error(where + ": " + std::to_string(v) + " soft tokens per image is outside 1..1120");
  }
  return int(v);
}

// HF keeps the image budget in the processor's config: `max_soft_tokens` at the top level or under
// "image_processor", in processor_config.json or preprocessor_config.json.
int hf_image_tokens(const std::filesystem::path& dir) {
  for (const char* name : {"processor_config.json", "preprocessor_config.json"}) {
    const std::filesystem::path file = dir / name;
    std::ifstream in(file);
    if (!in) continue;
    const auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) throw Error(file.string() + ": not a JSON object");
    for (const nlohmann::json* o :
         {&j, j.contains("image_processor") ? &j["image_processor"] : nullptr}) {
      if (!o || !o->is_object() || !o->contains("max_soft_tokens")) continue;
      const auto& v = (*o)["max_soft_tokens"];
      if (!v.is_number_integer()) {
        throw Error(file.string() + ": field 'max_soft_tokens': expected an integer");
      }
      return checked_image_tokens(v.get<int64_t>(), file.string() + ": field 'max_soft_tokens'");
    }
  }
  return 0;
}

}  // namespace

std::unique_ptr<Projector> load_projector(const std::string& path, int n_embd) {
  if (n_embd <= 0) throw Error(path + ": projector: invalid text embedding width");
  auto p = std::make_unique<Projector>();
  p->path = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    p->safetensors = SafetensorsModel::open(path);
    const SafetensorsModel& st = *p->safetensors;
    const Names names = hf_projector_names(st);
    fill(*p, st_lookup(*p, st), names, /*gguf_layout=*/false, n_embd, path);
    p->default_image_tokens = hf_image_tokens(path);
  } else {
    if (!std::filesystem::exists(path, ec)) throw Error(path + ": no such file or directory");
    p->gguf = gguf::File::open(path);
    const gguf::File& f = *p->gguf;
    const std::string arch = f.opt_string("general.architecture").value_or("");
    if (arch != "clip" && arch != "gemma4") {
      throw Error(path + ": metadata 'general.architecture': '" + arch +
                  "' is neither a projector ('clip') nor a Gemma 4 bundle ('gemma4')");
    }
    if (auto t = f.opt_string("clip.vision.projector_type"); t && *t != "gemma4uv") {
      throw Error(path + ": metadata 'clip.vision.projector_type': '" + *t +
                  "' is not the Gemma 4 unified vision projector ('gemma4uv')");
    }
    if (auto t = f.opt_string("clip.audio.projector_type"); t && *t != "gemma4ua") {
      throw Error(path + ": metadata 'clip.audio.projector_type': '" + *t +
                  "' is not the Gemma 4 unified audio projector ('gemma4ua')");
    }
    fill(*p, gguf_lookup(f), gguf_projector_names(), /*gguf_layout=*/true, n_embd, path);
    if (auto v = f.opt_int("clip.vision.max_soft_tokens")) {
      p->default_image_tokens =
          checked_image_tokens(*v, path + ": metadata 'clip.vision.max_soft_tokens'");
    }
  }
  if (!p->vision && !p->audio) {
    throw Error(path + ": no vision or audio projector tensors (expected " +
                gguf_projector_names().dense_w + " / " + gguf_projector_names().audio_proj +
                " or the HF model.vision_embedder.* names)");
  }
  return p;
}

bool has_projector_tensors(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    auto st = SafetensorsModel::open(path);
    return st->find("model.vision_embedder.patch_dense.weight") ||
           st->find("model.embed_vision.patch_dense.weight") ||
           st->find("model.embed_audio.embedding_projection.weight");
  }
  auto f = gguf::File::open(path);
  return f->find_tensor(gguf_projector_names().dense_w) ||
         f->find_tensor(gguf_projector_names().audio_proj);
}

}  // namespace ug::gemma4
