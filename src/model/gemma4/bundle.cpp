#include "model/gemma4/bundle.h"

#include <cstring>
#include <set>

#include "format/gguf.h"
#include "model/gemma4/projector.h"
#include "util/error.h"

namespace ug::gemma4 {

void write_bundle(const std::string& text_path, const std::string& mmproj_path,
                  const std::string& out_path) {
  const auto text = gguf::File::open(text_path);
  const auto mmproj = gguf::File::open(mmproj_path);
  if (text->opt_string("general.architecture").value_or("") != "gemma4") {
    throw Error(text_path +
                ": metadata 'general.architecture': expected a Gemma 4 text model "
                "('gemma4')");
  }
  if (text->find_tensor("v.patch_embd.weight") ||
      text->find_tensor("mm.a.input_projection.weight")) {
    throw Error(text_path + ": already holds projector tensors");
  }
  if (mmproj->opt_string("general.architecture").value_or("") != "clip") {
    throw Error(mmproj_path + ": metadata 'general.architecture': expected a projector ('clip')");
  }
  // Loads and checks every projector tensor against the text model's width.
  load_projector(mmproj_path, int(text->get_int("gemma4.embedding_length")));

  gguf::Writer w(text->alignment());
  for (const gguf::KeyValue& kv : text->metadata()) {
    if (kv.key != "general.alignment") w.set(kv.key, kv.value);
  }
  for (const gguf::KeyValue& kv : mmproj->metadata()) {
    if (kv.key.rfind("clip.", 0) == 0) w.set(kv.key, kv.value);
  }
  std::set<std::string> names;
  auto copy = [&](const gguf::File& f) {
    for (const gguf::TensorInfo& t : f.tensors()) {
      if (!tensor_type_supported(t.raw_type)) {
        throw Error(f.path() + ": tensor '" + t.name + "': type " + tensor_type_name(t.raw_type) +
                    " is not supported");
      }
      if (!names.insert(t.name).second) {
        throw Error(f.path() + ": tensor '" + t.name + "' exists in both files");
      }
      const uint8_t* data = t.data;
      w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims),
                   [data](uint8_t* out, uint64_t n) { std::memcpy(out, data, n); });
    }
  };
  copy(*text);
  copy(*mmproj);
  w.write(out_path);
}

}  // namespace ug::gemma4
