"""Gemma 4 12B "Unified" in PyTorch, written from the spec (docs: ../shared/spec/gemma4-unified.md
§1-§4, §9, §12), for training the nano model and as an independent reference for the C++ engine.

Pieces:
  * TextConfig / MMConfig / DrafterConfig: read from Hugging Face config.json (the names the oracle's
    tiny models and the official checkpoints use) and written back by `to_hf_config`.
  * Gemma4Unified: text decoder (sliding/global pattern from `layer_types`, per-layer head dims and
    KV heads, proportional RoPE on global layers, weighted q/k norms, weightless v norm, K=V on
    layers without v_proj, sandwich norms, GeGLU-tanh, layer_scalar, sqrt(H) scale on text
    embeddings only, tied LM head, final softcap) plus the encoder-free vision and audio embedders.
  * Gemma4Assistant: the MTP drafter (Q-only layers over the target's last sliding / last full KV).
  * Preprocessing: `preprocess_image` (HF size rule + float bicubic-antialias resize, 48x48 HWC
    patches), `audio_frames` (640-sample frames), `attention_masks` (causal, symmetric sliding
    window, bidirectional vision blocks on sliding layers only).

Everything computes in float32.
"""

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

PATCH = 48
PATCH_VALUES = PATCH * PATCH * 3  # 6912
AUDIO_FRAME = 640
AUDIO_RATE = 16000
POS_TABLE = 1120


# --------------------------------------------------------------------------------------------
# Configs
# --------------------------------------------------------------------------------------------


@dataclass
class TextConfig:
    hidden_size: int = 256
    intermediate_size: int = 1024
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    num_global_key_value_heads: int = 1
    head_dim: int = 64
    global_head_dim: int = 128
    layer_types: list = field(default_factory=lambda: ["sliding_attention"] * 5 + ["full_attention"])
    sliding_window: int = 512
    vocab_size: int = 2048
    rms_norm_eps: float = 1e-6
    final_logit_softcapping: float = 30.0
    rope_theta_sliding: float = 10000.0
    rope_theta_full: float = 1000000.0
    partial_rotary_factor: float = 0.25
    attention_k_eq_v: bool = True
    max_position_embeddings: int = 4096

    @staticmethod
    def from_hf(tc):
        rp = tc.get("rope_parameters") or {}
        sl = rp.get("sliding_attention", {})
        fu = rp.get("full_attention", {})
        return TextConfig(
            hidden_size=tc["hidden_size"],
            intermediate_size=tc["intermediate_size"],
            num_hidden_layers=tc["num_hidden_layers"],
            num_attention_heads=tc["num_attention_heads"],
            num_key_value_heads=tc["num_key_value_heads"],
            num_global_key_value_heads=tc.get("num_global_key_value_heads") or tc["num_key_value_heads"],
            head_dim=tc["head_dim"],
            global_head_dim=tc.get("global_head_dim") or tc["head_dim"],
            layer_types=list(tc["layer_types"]),
            sliding_window=tc["sliding_window"],
            vocab_size=tc["vocab_size"],
            rms_norm_eps=tc.get("rms_norm_eps", 1e-6),
            final_logit_softcapping=tc.get("final_logit_softcapping") or 0.0,
            rope_theta_sliding=sl.get("rope_theta", 10000.0),
            rope_theta_full=fu.get("rope_theta", 1e6),
            partial_rotary_factor=fu.get("partial_rotary_factor", 1.0),
            attention_k_eq_v=tc.get("attention_k_eq_v", False),
            max_position_embeddings=tc.get("max_position_embeddings", 4096),
        )

    def to_hf(self):
        return {
            "model_type": "gemma4_unified_text",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "num_global_key_value_heads": self.num_global_key_value_heads,
            "head_dim": self.head_dim,
            "global_head_dim": self.global_head_dim,
            "layer_types": list(self.layer_types),
            "sliding_window": self.sliding_window,
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "final_logit_softcapping": self.final_logit_softcapping,
            "rope_parameters": {
                "sliding_attention": {"rope_type": "default", "rope_theta": self.rope_theta_sliding},
                "full_attention": {"rope_type": "proportional",
                                   "partial_rotary_factor": self.partial_rotary_factor,
                                   "rope_theta": self.rope_theta_full},
            },
            "attention_k_eq_v": self.attention_k_eq_v,
            "tie_word_embeddings": True,
            "hidden_size_per_layer_input": 0,
            "vocab_size_per_layer_input": 0,
            "num_kv_shared_layers": 0,
            "use_double_wide_mlp": False,
            "enable_moe_block": False,
            "attention_bias": False,
            "hidden_activation": "gelu_pytorch_tanh",
            "use_bidirectional_attention": "vision",
            "vocab_size": self.vocab_size,
        }


@dataclass
class MMConfig:
    vision: bool = True
    audio: bool = True
    mm_embed_dim: int = 256  # width of the vision patch embedder before the projection
    pos_table: int = POS_TABLE
    layer_norm_eps: float = 1e-5
    rms_norm_eps: float = 1e-6


@dataclass
class DrafterConfig:
    text: TextConfig
    backbone_hidden_size: int = 256


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def rms_norm(x, weight=None, eps=1e-6):
    x32 = x.float()
    y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return y * weight if weight is not None else y


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


def rope_inv_freq(head_dim, theta, rotated_pairs):
    """Frequencies for NeoX-style RoPE over `head_dim`; pairs >= rotated_pairs get 0 (identity).
    The exponent's denominator is always the full head_dim (proportional RoPE, spec §1.4)."""
    j = torch.arange(head_dim // 2, dtype=torch.float64)
    inv = theta ** (-2.0 * j / head_dim)
    inv[rotated_pairs:] = 0.0
    return inv.float()


def apply_rope(x, positions, inv_freq):
    """x: [B, T, heads, D]; positions: [B, T] (int); rotate_half convention."""
    ang = positions.float()[..., None] * inv_freq[None, None, :]  # [B, T, D/2]
    cos = torch.cos(ang)[:, :, None, :]
    sin = torch.sin(ang)[:, :, None, :]
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attend(q, k, v, allowed):
    """q: [B, T, H, D]; k, v: [B, S, KV, D]; allowed: [B, T, S] bool. Scale 1.0 (spec §1.1)."""
    B, T, H, D = q.shape
    KV = k.shape[2]
    g = H // KV
    qh = q.permute(0, 2, 1, 3)  # B H T D
    kh = k.permute(0, 2, 1, 3).repeat_interleave(g, dim=1)
    vh = v.permute(0, 2, 1, 3).repeat_interleave(g, dim=1)
    scores = torch.matmul(qh, kh.transpose(-1, -2))
    scores = scores.masked_fill(~allowed[:, None, :, :], float("-inf"))
    p = torch.softmax(scores.float(), dim=-1)
    p = torch.nan_to_num(p, nan=0.0)  # rows with no visible key (padding)
    o = torch.matmul(p, vh)  # B H T D
    return o.permute(0, 2, 1, 3).reshape(B, T, H * D)


def attention_masks(T, block_ids, window, valid=None):
    """Boolean [B, T, T] masks (query, key) for sliding and full layers (spec §1.6, §12.3).

    block_ids: [B, T] long, >= 0 for positions inside a vision block (same id = same block), -1
    elsewhere. Full layers: causal. Sliding layers: (causal OR same block) AND |q - k| < window.
    valid: optional [B, T] bool; keys outside it are never visible."""
    dev = block_ids.device
    q = torch.arange(T, device=dev)[:, None]
    k = torch.arange(T, device=dev)[None, :]
    causal = (k <= q)[None]
    same = (block_ids[:, :, None] == block_ids[:, None, :]) & (block_ids[:, :, None] >= 0)
    within = ((q - k).abs() < window)[None]
    sliding = (causal | same) & within
    full = causal.expand(block_ids.shape[0], T, T)
    if valid is not None:
        sliding = sliding & valid[:, None, :]
        full = full & valid[:, None, :]
    return sliding, full


# --------------------------------------------------------------------------------------------
# Text decoder
# --------------------------------------------------------------------------------------------


class Attention(nn.Module):
    def __init__(self, c: TextConfig, sliding: bool, q_only=False):
        super().__init__()
        self.sliding = sliding
        self.n_head = c.num_attention_heads
        self.head_dim = c.head_dim if sliding else c.global_head_dim
        self.n_kv = c.num_key_value_heads if sliding else c.num_global_key_value_heads
        self.eps = c.rms_norm_eps
        H = c.hidden_size
        self.q_proj = nn.Linear(H, self.n_head * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_head * self.head_dim, H, bias=False)
        self.q_norm = RMSNorm(self.head_dim, c.rms_norm_eps)
        self.q_only = q_only
        if not q_only:
            self.k_proj = nn.Linear(H, self.n_kv * self.head_dim, bias=False)
            self.k_norm = RMSNorm(self.head_dim, c.rms_norm_eps)
            self.has_v = sliding or not c.attention_k_eq_v
            if self.has_v:
                self.v_proj = nn.Linear(H, self.n_kv * self.head_dim, bias=False)
        if sliding:
            inv = rope_inv_freq(self.head_dim, c.rope_theta_sliding, self.head_dim // 2)
        else:
            inv = rope_inv_freq(self.head_dim, c.rope_theta_full,
                                int(c.partial_rotary_factor * self.head_dim / 2))
        self.register_buffer("inv_freq", inv, persistent=False)

    def project_q(self, a, positions):
        B, T, _ = a.shape
        q = self.q_proj(a).view(B, T, self.n_head, self.head_dim)
        return apply_rope(self.q_norm(q), positions, self.inv_freq)

    def project_kv(self, a, positions):
        B, T, _ = a.shape
        kraw = self.k_proj(a).view(B, T, self.n_kv, self.head_dim)
        v = self.v_proj(a).view(B, T, self.n_kv, self.head_dim) if self.has_v else kraw
        k = apply_rope(self.k_norm(kraw), positions, self.inv_freq)
        v = rms_norm(v, None, self.eps)
        return k, v

    def forward(self, a, positions, allowed, kv=None):
        q = self.project_q(a, positions)
        if kv is None:
            kv = self.project_kv(a, positions)
        o = attend(q, kv[0], kv[1], allowed)
        return self.o_proj(o), kv


class DecoderLayer(nn.Module):
    def __init__(self, c: TextConfig, sliding: bool, q_only=False):
        super().__init__()
        H = c.hidden_size
        self.sliding = sliding
        self.self_attn = Attention(c, sliding, q_only)
        self.input_layernorm = RMSNorm(H, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(H, c.rms_norm_eps)
        self.pre_feedforward_layernorm = RMSNorm(H, c.rms_norm_eps)
        self.post_feedforward_layernorm = RMSNorm(H, c.rms_norm_eps)
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(H, c.intermediate_size, bias=False)
        self.mlp.up_proj = nn.Linear(H, c.intermediate_size, bias=False)
        self.mlp.down_proj = nn.Linear(c.intermediate_size, H, bias=False)
        self.layer_scalar = nn.Parameter(torch.ones(1))

    def forward(self, x, positions, allowed, kv=None):
        o, kv = self.self_attn(self.input_layernorm(x), positions, allowed, kv)
        x = x + self.post_attention_layernorm(o)
        f = self.pre_feedforward_layernorm(x)
        m = self.mlp.down_proj(gelu_tanh(self.mlp.gate_proj(f)) * self.mlp.up_proj(f))
        x = x + self.post_feedforward_layernorm(m)
        return x * self.layer_scalar, kv


class VisionEmbedder(nn.Module):
    """48x48 HWC patch vector -> LN -> Linear+bias -> LN -> + x/y position rows -> LN (spec §2.3);
    the RMSNorm and projection to the decoder width live in Gemma4Unified.embed_image."""

    def __init__(self, mm: MMConfig):
        super().__init__()
        d = mm.mm_embed_dim
        self.patch_ln1 = nn.LayerNorm(PATCH_VALUES, eps=mm.layer_norm_eps)
        self.patch_dense = nn.Linear(PATCH_VALUES, d)
        self.patch_ln2 = nn.LayerNorm(d, eps=mm.layer_norm_eps)
        self.pos_embedding = nn.Parameter(torch.zeros(mm.pos_table, 2, d))
        self.pos_norm = nn.LayerNorm(d, eps=mm.layer_norm_eps)

    def forward(self, patches, pos_xy):
        u = self.patch_ln2(self.patch_dense(self.patch_ln1(patches)))
        u = u + self.pos_embedding[pos_xy[..., 0], 0] + self.pos_embedding[pos_xy[..., 1], 1]
        return self.pos_norm(u)


class Gemma4Unified(nn.Module):
    def __init__(self, c: TextConfig, mm: MMConfig = None):
        super().__init__()
        self.config = c
        self.mm = mm or MMConfig(vision=False, audio=False)
        H = c.hidden_size
        self.embed_tokens = nn.Embedding(c.vocab_size, H)
        self.layers = nn.ModuleList(
            [DecoderLayer(c, t == "sliding_attention") for t in c.layer_types])
        self.norm = RMSNorm(H, c.rms_norm_eps)
        self.embed_scale = math.sqrt(H)
        if self.mm.vision:
            self.vision_embedder = VisionEmbedder(self.mm)
            self.vision_projection = nn.Linear(self.mm.mm_embed_dim, H, bias=False)
        if self.mm.audio:
            self.audio_projection = nn.Linear(AUDIO_FRAME, H, bias=False)
        self.suppress_tokens = []

    # -- embedders ---------------------------------------------------------------------------
    def embed_image(self, patches, pos_xy):
        """patches [N, 6912] in HF HWC order, pos_xy [N, 2] long (x = column, y = row)."""
        u = self.vision_embedder(patches, pos_xy)
        return self.vision_projection(rms_norm(u, None, self.mm.rms_norm_eps))

    def embed_audio(self, frames):
        """frames [N, 640] raw 16 kHz samples."""
        return self.audio_projection(rms_norm(frames, None, self.mm.rms_norm_eps))

    def embed_text(self, ids):
        return self.embed_tokens(ids) * self.embed_scale

    # -- decoder -----------------------------------------------------------------------------
    def forward(self, ids, soft=None, soft_mask=None, block_ids=None, valid=None,
                return_kv=False):
        """ids [B, T]; soft [B, T, H] vectors for multimodal positions where soft_mask [B, T] is
        true (not scaled); block_ids [B, T] vision block ids (-1 elsewhere).
        Returns (softcapped logits [B, T, V], post-norm hidden [B, T, H], kv list or None)."""
        B, T = ids.shape
        x = self.embed_text(ids)
        if soft is not None:
            x = torch.where(soft_mask[..., None], soft, x)
        if block_ids is None:
            block_ids = torch.full((B, T), -1, dtype=torch.long, device=ids.device)
        positions = torch.arange(T, device=ids.device)[None].expand(B, T)
        sliding, full = attention_masks(T, block_ids, self.config.sliding_window, valid)
        kvs = []
        for layer in self.layers:
            x, kv = layer(x, positions, sliding if layer.sliding else full)
            if return_kv:
                kvs.append(kv)
        h = self.norm(x)
        logits = self.logits(h)
        return logits, h, (kvs if return_kv else None)

    def logits(self, h):
        z = h @ self.embed_tokens.weight.t()
        cap = self.config.final_logit_softcapping
        return cap * torch.tanh(z / cap) if cap > 0 else z

    # -- HF names ------------------------------------------------------------------------------
    def hf_state_dict(self):
        """Tensors under the official HF names (spec §7.1)."""
        out = {}
        for name, t in self.state_dict().items():
            if name.startswith("vision_embedder."):
                out["model." + name] = t
            elif name.startswith("vision_projection."):
                out["model.embed_vision.embedding_projection." + name.split(".", 1)[1]] = t
            elif name.startswith("audio_projection."):
                out["model.embed_audio.embedding_projection." + name.split(".", 1)[1]] = t
            else:
                out["model.language_model." + name] = t
        return out

    def load_hf_state_dict(self, sd, strict=True):
        mine = {}
        for name, t in sd.items():
            n = name
            for pre in ("model.language_model.", "model.text_model."):
                if n.startswith(pre):
                    n = n[len(pre):]
            if n.startswith("model.vision_embedder.") or n.startswith("model.embed_vision.patch") or \
                    n.startswith("model.embed_vision.pos_"):
                n = "vision_embedder." + n.split(".", 2)[2]
            elif n.startswith("model.embed_vision.") and "embedding_projection" in n:
                n = "vision_projection." + n.rsplit(".", 1)[1]
            elif n.startswith("model.embed_audio.") and "embedding_projection" in n:
                n = "audio_projection." + n.rsplit(".", 1)[1]
            elif n.startswith("model."):
                n = n[len("model."):]
            if n == "lm_head.weight":
                continue
            mine[n] = t
        missing, unexpected = self.load_state_dict(mine, strict=False)
        if strict and (missing or unexpected):
            raise ValueError(f"weights do not match the config: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        return missing

    def hf_config(self, token_ids=None):
        c = self.config
        cfg = {
            "architectures": ["Gemma4UnifiedForConditionalGeneration"],
            "model_type": "gemma4_unified",
            "text_config": c.to_hf(),
            "hidden_size": c.hidden_size,
            "intermediate_size": c.intermediate_size,
            "tie_word_embeddings": True,
            "hidden_act": "gelu_pytorch_tanh",
            "torch_dtype": "float32",
        }
        if self.mm.vision:
            cfg["vision_config"] = {"model_type": "gemma4_unified_vision",
                                    "mm_embed_dim": self.mm.mm_embed_dim, "patch_size": PATCH,
                                    "position_embedding_size": self.mm.pos_table,
                                    "num_soft_tokens": 280, "rms_norm_eps": self.mm.rms_norm_eps}
        if self.mm.audio:
            cfg["audio_config"] = {"model_type": "gemma4_unified_audio",
                                   "audio_embed_dim": AUDIO_FRAME, "sampling_rate": AUDIO_RATE,
                                   "rms_norm_eps": self.mm.rms_norm_eps}
        if token_ids:
            cfg.update(token_ids)
        return cfg


def load_hf_model(folder, mm=None):
    """Loads a HF folder (config.json + model.safetensors) written by us or by the oracle."""
    from tensor_io import read_safetensors
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    tc = TextConfig.from_hf(cfg.get("text_config", cfg))
    sd = read_safetensors(os.path.join(folder, "model.safetensors"))
    if mm is None:
        has_v = any(k.endswith("patch_dense.weight") for k in sd)
        has_a = any(k.startswith("model.embed_audio.") for k in sd)
        dim = next((v.shape[0] for k, v in sd.items() if k.endswith("patch_dense.weight")), 256)
        mm = MMConfig(vision=has_v, audio=has_a, mm_embed_dim=dim)
    model = Gemma4Unified(tc, mm)
    model.load_hf_state_dict(sd)
    gen = os.path.join(folder, "generation_config.json")
    if os.path.exists(gen):
        with open(gen) as f:
            model.suppress_tokens = list(json.load(f).get("suppress_tokens", []))
    return model.eval()


def load_gguf_projector(model, path):
    """Loads an mmproj GGUF (llama.cpp layout, spec §7.3) into `model`'s embedders, undoing the
    converter's CHW column permutation and position-table transpose."""
    from tensor_io import GGUF
    g = GGUF(path)
    d = g.tensor("v.patch_embd.weight").shape[0]
    if not model.mm.vision:
        model.mm = MMConfig(vision=True, audio=True, mm_embed_dim=d)
        model.vision_embedder = VisionEmbedder(model.mm)
        model.vision_projection = nn.Linear(d, model.config.hidden_size, bias=False)
        model.audio_projection = nn.Linear(AUDIO_FRAME, model.config.hidden_size, bias=False)
    # GGUF column c*2304 + row*48 + col holds HF column (row*48 + col)*3 + c.
    i = np.arange(PATCH_VALUES)
    hwc_of_chw = (i % 2304) * 3 + i // 2304
    chw_of_hwc = np.empty_like(hwc_of_chw)
    chw_of_hwc[hwc_of_chw] = i
    ve = model.vision_embedder
    t = lambda a: torch.from_numpy(np.array(a))  # noqa: E731
    with torch.no_grad():
        ve.patch_dense.weight.copy_(t(g.tensor("v.patch_embd.weight")[:, chw_of_hwc]))
        ve.patch_dense.bias.copy_(t(g.tensor("v.patch_embd.bias")))
        ve.patch_ln1.weight.copy_(t(g.tensor("v.patch_norm.1.weight")[chw_of_hwc]))
        ve.patch_ln1.bias.copy_(t(g.tensor("v.patch_norm.1.bias")[chw_of_hwc]))
        ve.patch_ln2.weight.copy_(t(g.tensor("v.patch_norm.2.weight")))
        ve.patch_ln2.bias.copy_(t(g.tensor("v.patch_norm.2.bias")))
        ve.pos_norm.weight.copy_(t(g.tensor("v.patch_norm.3.weight")))
        ve.pos_norm.bias.copy_(t(g.tensor("v.patch_norm.3.bias")))
        pos = g.tensor("v.position_embd.weight")  # [2, n_pos, d]
        ve.pos_embedding.copy_(t(pos.transpose(1, 0, 2)))
        model.vision_projection.weight.copy_(t(g.tensor("mm.input_projection.weight")))
        model.audio_projection.weight.copy_(t(g.tensor("mm.a.input_projection.weight")))
    return model


# --------------------------------------------------------------------------------------------
# MTP drafter (spec §4)
# --------------------------------------------------------------------------------------------


class Gemma4Assistant(nn.Module):
    def __init__(self, c: DrafterConfig):
        super().__init__()
        self.config = c
        tc = c.text
        self.embed_tokens = nn.Embedding(tc.vocab_size, tc.hidden_size)  # tied LM head only
        self.layers = nn.ModuleList(
            [DecoderLayer(tc, t == "sliding_attention", q_only=True) for t in tc.layer_types])
        self.norm = RMSNorm(tc.hidden_size, tc.rms_norm_eps)
        self.pre_projection = nn.Linear(2 * c.backbone_hidden_size, tc.hidden_size, bias=False)
        self.post_projection = nn.Linear(tc.hidden_size, c.backbone_hidden_size, bias=False)

    def forward(self, target, tokens, h, positions, kv_sliding, kv_full, allowed_sliding,
                allowed_full):
        """One draft step for a batch of queries.

        tokens [B, Q] (last-seen token), h [B, Q, Ht] (target post-norm hidden, or the previous
        step's h_next), positions [B, Q] (p = index of `tokens`), kv_*: (K, V) [B, S, kv, D] from
        the target's last sliding / last full layer, allowed_* [B, Q, S].
        Returns (logits [B, Q, V] without softcap, h_next [B, Q, Ht])."""
        e = target.embed_text(tokens)
        z = self.pre_projection(torch.cat([e, h], dim=-1))
        for layer in self.layers:
            kv = kv_sliding if layer.sliding else kv_full
            z, _ = layer(z, positions, allowed_sliding if layer.sliding else allowed_full, kv)
        d = self.norm(z)
        return d @ self.embed_tokens.weight.t(), self.post_projection(d)

    def hf_config(self):
        tc = self.config.text.to_hf()
        tc["model_type"] = "gemma4_unified_assistant_text"
        tc["num_kv_shared_layers"] = self.config.text.num_hidden_layers
        return {
            "architectures": ["Gemma4UnifiedAssistantForCausalLM"],
            "model_type": "gemma4_unified_assistant",
            "backbone_hidden_size": self.config.backbone_hidden_size,
            "use_ordered_embeddings": False,
            "text_config": tc,
            "tie_word_embeddings": True,
            "torch_dtype": "float32",
        }

    def hf_state_dict(self):
        out = {}
        for name, t in self.state_dict().items():
            if name.startswith("pre_projection") or name.startswith("post_projection"):
                out[name] = t
            else:
                out["model." + name] = t
        return out


def drafter_masks(n_keys, positions, window):
    """Key visibility of drafter queries at `positions` [B, Q] over cached positions 0..n_keys-1:
    keys k < p (the target has cached exactly the positions before p); sliding layers also
    p - k < window (llama.cpp's causal window, README-mtp §3)."""
    k = torch.arange(n_keys, device=positions.device)[None, None, :]
    p = positions[..., None]
    full = k < p
    return full & (p - k < window), full


def load_gguf_drafter(path):
    """The oracle's `gemma4-assistant` GGUF (F32) as a Gemma4Assistant."""
    from tensor_io import GGUF
    g = GGUF(path)
    kv = g.kv
    arch = kv["general.architecture"]
    key = lambda s: f"{arch}.{s}"  # noqa: E731
    n_layer = kv[key("block_count")]
    swa = kv[key("attention.sliding_window_pattern")]
    hc_kv = kv[key("attention.head_count_kv")]
    hc_kv = hc_kv if isinstance(hc_kv, list) else [hc_kv] * n_layer
    ff = kv[key("feed_forward_length")]
    ff = ff[0] if isinstance(ff, list) else ff
    rope_freqs = g.tensor("rope_freqs.weight")
    full_hd = kv[key("attention.key_length")]
    tc = TextConfig(
        hidden_size=kv[key("embedding_length")], intermediate_size=ff, num_hidden_layers=n_layer,
        num_attention_heads=kv[key("attention.head_count")],
        num_key_value_heads=max(hc_kv[i] for i in range(n_layer) if swa[i]) if any(swa) else 1,
        num_global_key_value_heads=1, head_dim=kv[key("attention.key_length_swa")],
        global_head_dim=full_hd,
        layer_types=["sliding_attention" if s else "full_attention" for s in swa],
        sliding_window=kv[key("attention.sliding_window")],
        vocab_size=g.tensor("token_embd.weight").shape[0],
        rms_norm_eps=kv[key("attention.layer_norm_rms_epsilon")],
        rope_theta_sliding=kv[key("rope.freq_base_swa")], rope_theta_full=kv[key("rope.freq_base")],
        partial_rotary_factor=float((rope_freqs < 1e10).sum()) / (full_hd / 2),
        attention_k_eq_v=True)
    c = DrafterConfig(text=tc, backbone_hidden_size=kv[key("embedding_length_out")])
    m = Gemma4Assistant(c)
    names = {"attn_norm": "input_layernorm.weight", "attn_q": "self_attn.q_proj.weight",
             "attn_q_norm": "self_attn.q_norm.weight", "attn_output": "self_attn.o_proj.weight",
             "post_attention_norm": "post_attention_layernorm.weight",
             "ffn_norm": "pre_feedforward_layernorm.weight", "ffn_gate": "mlp.gate_proj.weight",
             "ffn_up": "mlp.up_proj.weight", "ffn_down": "mlp.down_proj.weight",
             "post_ffw_norm": "post_feedforward_layernorm.weight",
             "layer_output_scale": "layer_scalar"}
    sd = {"embed_tokens.weight": g.tensor("token_embd.weight"),
          "norm.weight": g.tensor("output_norm.weight"),
          "pre_projection.weight": g.tensor("nextn.pre_projection.weight"),
          "post_projection.weight": g.tensor("nextn.post_projection.weight")}
    for i in range(n_layer):
        for gg, hf in names.items():
            sd[f"layers.{i}.{hf}"] = g.tensor(f"blk.{i}.{gg}.weight").reshape(-1) \
                if gg == "layer_output_scale" else g.tensor(f"blk.{i}.{gg}.weight")
    m.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in sd.items()})
    return m.eval()


def load_hf_drafter(folder):
    from tensor_io import read_safetensors
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    tc = TextConfig.from_hf(cfg["text_config"])
    m = Gemma4Assistant(DrafterConfig(text=tc, backbone_hidden_size=cfg["backbone_hidden_size"]))
    sd = read_safetensors(os.path.join(folder, "model.safetensors"))
    m.load_state_dict({(k[len("model."):] if k.startswith("model.") else k): v
                       for k, v in sd.items()})
    return m.eval()


# --------------------------------------------------------------------------------------------
# Preprocessing (spec §2.1, §3.1, §12)
# --------------------------------------------------------------------------------------------


def image_target_size(h, w, budget=280):
    f = math.sqrt(budget * 9 * 256 / (h * w))
    h2 = int(math.floor(f * h / PATCH)) * PATCH
    w2 = int(math.floor(f * w / PATCH)) * PATCH
    if h2 == 0:
        h2, w2 = PATCH, min(int(w // h) * PATCH, budget * PATCH)
    elif w2 == 0:
        w2, h2 = PATCH, min(int(h // w) * PATCH, budget * PATCH)
    return h2, w2


def to_rgb_u8(img):
    """PIL image -> HxWx3 uint8, transparency composited over white (spec §12.2)."""
    from PIL import Image
    if img.mode in ("RGBA", "LA", "P", "L", "PA", "I", "I;16", "1"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def resize_u8(rgb_u8, h2, w2):
    """HF float path (spec §12.1): bicubic + antialias on 0..255 floats, clamp, round to u8."""
    h, w = rgb_u8.shape[:2]
    if (h, w) == (h2, w2):
        return rgb_u8.copy()
    x = torch.from_numpy(np.array(rgb_u8)).permute(2, 0, 1)[None].float()
    y = F.interpolate(x, size=(h2, w2), mode="bicubic", align_corners=False, antialias=True)
    return y.clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()


def patchify(rgb_u8):
    """HxWx3 u8 (multiples of 48) -> (patches [N, 6912] float32 in [0,1], pos_xy [N, 2] long)."""
    h, w = rgb_u8.shape[:2]
    rows, cols = h // PATCH, w // PATCH
    img = torch.from_numpy(rgb_u8.astype(np.float32)) * torch.tensor(1 / 255, dtype=torch.float32)
    p = img.view(rows, PATCH, cols, PATCH, 3).permute(0, 2, 1, 3, 4).reshape(rows * cols, PATCH_VALUES)
    ys, xs = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    pos = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=-1)
    return p.contiguous(), pos


def preprocess_image(img, budget=280):
    """PIL image -> (patches, pos_xy, (H', W'))."""
    rgb = to_rgb_u8(img)
    h2, w2 = image_target_size(rgb.shape[0], rgb.shape[1], budget)
    r = resize_u8(rgb, h2, w2)
    p, pos = patchify(r)
    return p, pos, (h2, w2)


def audio_frames(samples):
    """float32 16 kHz mono samples -> [ceil(n/640), 640] zero-padded frames."""
    s = torch.as_tensor(np.asarray(samples, dtype=np.float32))
    n = (s.numel() + AUDIO_FRAME - 1) // AUDIO_FRAME
    out = torch.zeros(n * AUDIO_FRAME)
    out[: s.numel()] = s
    return out.view(n, AUDIO_FRAME)


def read_wav(path):
    """PCM16/PCM8 WAV -> (float32 mono samples, rate); channels averaged."""
    import wave
    with wave.open(path, "rb") as w:
        n, ch, width, rate = w.getnframes(), w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(n)
    if width == 2:
        a = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 1:
        a = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    else:
        raise ValueError(f"{path}: {8 * width}-bit WAV not supported")
    a = a.reshape(-1, ch).mean(axis=1) if ch > 1 else a
    return a.astype(np.float32), rate
