#include "model/gemma4/tensor_names.h"

#include "format/safetensors.h"

namespace ug::gemma4 {

namespace {

struct LayerNamePair {
  const char* gguf;
  const char* hf;
};

LayerNamePair layer_names(LayerTensor t) {
  switch (t) {
    case LayerTensor::kAttnNorm:
      return {"attn_norm.weight", "input_layernorm.weight"};
    case LayerTensor::kQ:
      return {"attn_q.weight", "self_attn.q_proj.weight"};
    case LayerTensor::kK:
      return {"attn_k.weight", "self_attn.k_proj.weight"};
    case LayerTensor::kV:
      return {"attn_v.weight", "self_attn.v_proj.weight"};
    case LayerTensor::kO:
      return {"attn_output.weight", "self_attn.o_proj.weight"};
    case LayerTensor::kQNorm:
      return {"attn_q_norm.weight", "self_attn.q_norm.weight"};
    case LayerTensor::kKNorm:
      return {"attn_k_norm.weight", "self_attn.k_norm.weight"};
    case LayerTensor::kPostAttnNorm:
      return {"post_attention_norm.weight", "post_attention_layernorm.weight"};
    case LayerTensor::kFfnNorm:
      return {"ffn_norm.weight", "pre_feedforward_layernorm.weight"};
    case LayerTensor::kGate:
      return {"ffn_gate.weight", "mlp.gate_proj.weight"};
    case LayerTensor::kUp:
      return {"ffn_up.weight", "mlp.up_proj.weight"};
    case LayerTensor::kDown:
      return {"ffn_down.weight", "mlp.down_proj.weight"};
    case LayerTensor::kPostFfwNorm:
      return {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"};
    case LayerTensor::kOutputScale:
      return {"layer_output_scale.weight", "layer_scalar"};
  }
  return {"", ""};
}

}  // namespace

bool is_layer_matrix(LayerTensor t) {
  switch (t) {
    case LayerTensor::kQ:
    case LayerTensor::kK:
    case LayerTensor::kV:
    case LayerTensor::kO:
    case LayerTensor::kGate:
    case LayerTensor::kUp:
    case LayerTensor::kDown:
      return true;
    default:
      return false;
  }
}

std::string gguf_layer_tensor(int layer, LayerTensor t) {
  return "blk." + std::to_string(layer) + "." + layer_names(t).gguf;
}

std::string hf_layer_tensor(const std::string& prefix, int layer, LayerTensor t) {
  return prefix + "layers." + std::to_string(layer) + "." + layer_names(t).hf;
}

std::string hf_text_prefix(const SafetensorsModel& st) {
  if (!st.find("model.language_model.embed_tokens.weight") &&
      st.find("model.embed_tokens.weight")) {
    return "model.";
  }
  return "model.language_model.";
}

const ProjectorNames& gguf_projector_names() {
  static const ProjectorNames names = {
      "v.patch_norm.1.weight",      "v.patch_norm.1.bias",         "v.patch_embd.weight",
      "v.patch_embd.bias",          "v.patch_norm.2.weight",       "v.patch_norm.2.bias",
      "v.position_embd.weight",     "v.patch_norm.3.weight",       "v.patch_norm.3.bias",
      "mm.input_projection.weight", "mm.a.input_projection.weight"};
  return names;
}

ProjectorNames hf_projector_names(const SafetensorsModel& st) {
  const bool renamed = st.find("model.embed_vision.patch_dense.weight") != nullptr;
  const std::string p = renamed ? "model.embed_vision." : "model.vision_embedder.";
  const std::string proj =
      st.find("model.embed_vision.multimodal_embedder.embedding_projection.weight")
          ? "model.embed_vision.multimodal_embedder.embedding_projection.weight"
          : "model.embed_vision.embedding_projection.weight";
  const std::string audio =
      st.find("model.embed_audio.multimodal_embedder.embedding_projection.weight")
          ? "model.embed_audio.multimodal_embedder.embedding_projection.weight"
          : "model.embed_audio.embedding_projection.weight";
  return {p + "patch_ln1.weight",
          p + "patch_ln1.bias",
          p + "patch_dense.weight",
          p + "patch_dense.bias",
          p + "patch_ln2.weight",
          p + "patch_ln2.bias",
          p + "pos_embedding",
          p + "pos_norm.weight",
          p + "pos_norm.bias",
          proj,
          audio};
}

}  // namespace ug::gemma4
