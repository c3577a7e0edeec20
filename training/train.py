"""One command: tokenizer -> model -> MTP drafter (distillation) -> HF export -> GGUF.

  /usr/bin/python3 training/train.py --out runs/nano --minutes 90 --threads 2 \\
      --unigemma build/release/unigemma

(the shipped recipe: preset nano192, RECIPE_TASK_WEIGHTS, bf16 matrix products where the CPU
has AMX/AVX-512 BF16; models/README.md)

Phases share the wall-clock budget (`--minutes`; `--drafter-share` of it goes to the drafter).
A checkpoint (`OUT/ckpt.pt`, written to a temp file then renamed) is kept every
`--ckpt-minutes`; rerunning the same command resumes from it. Everything is seeded: the data
stream is example index -> Generator(seed).example(index), so a resumed run sees the same data.

Outputs: OUT/hf (config.json, generation_config.json, model.safetensors, tokenizer.json,
tokenizer_config.json), OUT/hf-assistant (the drafter), and with --unigemma: OUT/gguf/nano-f32.gguf,
OUT/gguf/mmproj-nano-f32.gguf, OUT/gguf/nano-assistant-f32.gguf (unigemma convert).
"""

import argparse
import json
import math
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _threads_from_argv():
    for i, a in enumerate(sys.argv):
        if a == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return "1"


# Debian's torch calls the system BLAS (libblas.so.3): OpenBLAS (libopenblas0-pthread, installed
# by scripts/setup --training) is ~5x faster than the reference BLAS. Its thread count is read
# when the library loads, so it is set before torch is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", _threads_from_argv())

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import chat  # noqa: E402
import data  # noqa: E402
import gemma4_torch as g  # noqa: E402
import tensor_io  # noqa: E402
import tokenizer as tk  # noqa: E402

PRESETS = {
    # Pipeline check: minutes on one core.
    "smoke": dict(hidden=64, layers=6, heads=2, kv=1, head_dim=32, global_head_dim=64, ff=256,
                  mm_dim=64, vocab=1024, d_hidden=64, d_ff=128, d_heads=2),
    # The shipped size: 12 layers = 2 x [5 sliding, 1 full].
    "nano": dict(hidden=256, layers=12, heads=4, kv=2, head_dim=64, global_head_dim=128, ff=1024,
                 mm_dim=256, vocab=1536, d_hidden=128, d_ff=512, d_heads=4),
    # 6 layers = 1 x [5 sliding, 1 full] at hidden 256.
    "nano6": dict(hidden=256, layers=6, heads=4, kv=2, head_dim=64, global_head_dim=128, ff=1024,
                  mm_dim=256, vocab=1536, d_hidden=128, d_ff=512, d_heads=4),
    # Smaller alternative for a 2-core 90-minute budget.
    "nano192": dict(hidden=192, layers=6, heads=3, kv=1, head_dim=64, global_head_dim=128,
                    ff=768, mm_dim=192, vocab=1536, d_hidden=128, d_ff=512, d_heads=3),
}


# The shipped model's sampling mix (models/README.md): the hard tasks (shape, count, beep count,
# spoken digits, arithmetic) get more examples; used when neither --tasks nor --task-weights is given.
RECIPE_TASK_WEIGHTS = {
    "shape": 2, "colour": 1, "size": 0.5, "count": 2, "position": 1, "read_digit": 0.5,
    "read_word": 0.5, "tone_pitch": 0.5, "beep_count": 2, "spoken_digit": 2.5,
    "spoken_word": 0.5, "arithmetic": 6, "spelling": 0.5, "letter_count": 0.5, "thinking": 1,
    "tool_call": 1, "tool_answer": 0.5, "no_tool": 0.5,
}


def text_config(p, window=512):
    types = (["sliding_attention"] * 5 + ["full_attention"]) * (p["layers"] // 6)
    return g.TextConfig(hidden_size=p["hidden"], intermediate_size=p["ff"],
                        num_hidden_layers=len(types), num_attention_heads=p["heads"],
                        num_key_value_heads=p["kv"], num_global_key_value_heads=1,
                        head_dim=p["head_dim"], global_head_dim=p["global_head_dim"],
                        layer_types=types, sliding_window=window, vocab_size=p["vocab"],
                        final_logit_softcapping=30.0, partial_rotary_factor=0.25,
                        attention_k_eq_v=True, max_position_embeddings=4096)


def drafter_config(p, tc):
    dt = g.TextConfig(**{**tc.__dict__})
    dt.hidden_size = p["d_hidden"]
    dt.intermediate_size = p["d_ff"]
    dt.num_attention_heads = p["d_heads"]
    dt.num_hidden_layers = 4
    dt.layer_types = ["sliding_attention"] * 3 + ["full_attention"]
    return g.DrafterConfig(text=dt, backbone_hidden_size=tc.hidden_size)


def init_weights(model, seed, pos_init=0.02):
    """Normal(0, 1/fan_in) matrices and embeddings; LayerNorm/RMSNorm weights 1, biases 0,
    layer_scalar 1; q/k norm weights head_dim^-1/4 (Gemma 4's attention scale is 1.0, so these
    set the initial logit scale, as in the oracle's tiny models); vision x/y position rows
    N(0, pos_init): at 1 they are as large as the patch content after its LayerNorm, so where a
    patch lies reaches the decoder from the first step (at 0.02 the rows never grew: row std
    0.08-0.18 after a 90-minute run, and every task needing position stayed at chance)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("q_norm.weight") or name.endswith("k_norm.weight"):
                p.fill_(p.numel() ** -0.25)
            elif name.endswith("patch_ln1.bias") or name.endswith("patch_dense.bias"):
                # A uniform patch (plain backgrounds are common) has zero variance: LayerNorm1
                # then outputs rounding noise / sqrt(eps), and with zero biases LayerNorm2 would
                # normalise that noise to unit size. Non-zero biases keep those patches
                # well-defined (and the engine's numerics equal to these) from the first step.
                p.normal_(0, 0.1, generator=gen)
            elif name.endswith(".bias"):
                p.zero_()
            elif p.dim() == 1:
                p.fill_(1.0)
            elif name.endswith("pos_embedding"):
                p.normal_(0, pos_init, generator=gen)
            else:
                p.normal_(0, p.shape[1] ** -0.5, generator=gen)


# --------------------------------------------------------------------------------------------
# Examples -> tensors
# --------------------------------------------------------------------------------------------


class Encoded:
    """One example as model input: ids (placeholders at soft positions), where media go, and the
    loss mask (the target tokens)."""

    def __init__(self, ids, media, loss_from, task, history_targets=()):
        self.ids = ids
        self.media = media  # [(kind, start, payload)]: image payload (patches, pos), audio frames
        self.loss_from = loss_from  # first position whose next-token prediction is trained
        self.task = task
        # Earlier model answers in the prompt (multi-question conversations): token positions
        # whose prediction is trained as well.
        self.history_targets = list(history_targets)


def encode_prompt(tok, rendered, media_items, budget):
    """Mirrors the engine's prompt assembly: text pieces tokenized separately, soft tokens for
    media. Returns (ids, media list)."""
    ids = []
    media = []
    ph = {"image": tok.token_id("<|image|>"), "audio": tok.token_id("<|audio|>")}
    for kind, val in chat.expand_media(rendered):
        if kind == "text":
            ids.extend(tok.encode(val))
            continue
        mkind, payload = media_items[val]
        if mkind != kind:
            raise ValueError("media order does not match the placeholders")
        if kind == "image":
            patches, pos, _ = g.preprocess_image(payload, budget)
            n = patches.shape[0]
            media.append(("image", len(ids), (patches, pos)))
        else:
            frames = g.audio_frames(payload)
            n = frames.shape[0]
            media.append(("audio", len(ids), frames))
        ids.extend([ph[kind]] * n)
    return ids, media


def model_turn_answers(tok, ids):
    """Positions of the answer tokens (through `<turn|>`) of every complete model turn in `ids`:
    the tokens after `<|turn>` `model` `\n`."""
    turn, end = tok.token_id("<|turn>"), tok.token_id("<turn|>")
    header = tok.encode("model\n")
    out = []
    i = 0
    while i < len(ids):
        if ids[i] == turn and ids[i + 1:i + 1 + len(header)] == header:
            j = i + 1 + len(header)
            k = j
            while k < len(ids) and ids[k] != end:
                k += 1
            if k < len(ids):
                out.extend(range(j, k + 1))
            i = k
        i += 1
    return out


def encode_example(tok, ex, budget):
    ids, media = encode_prompt(tok, ex.prompt(), ex.media, budget)
    loss_from = len(ids) - 1
    history = [p for p in model_turn_answers(tok, ids) if p > 0]
    ids = ids + tok.encode(ex.target)
    return Encoded(ids, media, loss_from, ex.task, history)


def collate(model, batch, pad_id):
    """-> ids [B,T], soft [B,T,H] (or None), soft_mask, block_ids, valid, labels (-100 = none)."""
    B = len(batch)
    T = max(len(e.ids) for e in batch)
    ids = torch.full((B, T), pad_id, dtype=torch.long)
    valid = torch.zeros(B, T, dtype=torch.bool)
    labels = torch.full((B, T), -100, dtype=torch.long)
    blocks = torch.full((B, T), -1, dtype=torch.long)
    soft_mask = torch.zeros(B, T, dtype=torch.bool)
    img_p, img_pos, img_at, aud, aud_at = [], [], [], [], []
    for b, e in enumerate(batch):
        n = len(e.ids)
        ids[b, :n] = torch.tensor(e.ids)
        valid[b, :n] = True
        labels[b, e.loss_from:n - 1] = torch.tensor(e.ids[e.loss_from + 1:n])
        for p in e.history_targets:  # the prediction made at p - 1 is the token at p
            labels[b, p - 1] = e.ids[p]
        for k, (kind, start, payload) in enumerate(e.media):
            if kind == "image":
                p, pos = payload
                img_p.append(p)
                img_pos.append(pos)
                img_at.append((b, start, p.shape[0]))
                blocks[b, start:start + p.shape[0]] = k
            else:
                aud.append(payload)
                aud_at.append((b, start, payload.shape[0]))
    soft = None
    if img_at or aud_at:
        soft = torch.zeros(B, T, model.config.hidden_size)
        if img_at:
            e = model.embed_image(torch.cat(img_p), torch.cat(img_pos))
            o = 0
            for b, s, n in img_at:
                soft_mask[b, s:s + n] = True
                soft = soft.index_put((torch.full((n,), b), torch.arange(s, s + n)), e[o:o + n])
                o += n
        if aud_at:
            e = model.embed_audio(torch.cat(aud))
            o = 0
            for b, s, n in aud_at:
                soft_mask[b, s:s + n] = True
                soft = soft.index_put((torch.full((n,), b), torch.arange(s, s + n)), e[o:o + n])
                o += n
    return ids, soft, soft_mask, blocks, valid, labels


_pool_cache = {}


def length_bucketed_batch(args, tok, gen, step, base):
    """Batch `step` of the deterministic stream: examples are drawn in pools of
    `args.bucket` batches, sorted by length and cut into batches (less padding: prompt lengths
    range from ~20 to ~180 tokens), and the pool's batches are visited in a seeded order."""
    k = max(1, args.bucket)
    pool_index, within = divmod(step, k)
    key = (base, pool_index)
    if key not in _pool_cache:
        _pool_cache.clear()
        rng = random.Random(f"{args.seed}:pool:{base}:{pool_index}")
        budget = rng.choice(args.budgets)
        first = base + pool_index * k * args.batch
        pool = [encode_example(tok, gen.example(first + i), budget) for i in range(k * args.batch)]
        pool.sort(key=lambda e: len(e.ids))
        batches = [pool[i * args.batch:(i + 1) * args.batch] for i in range(k)]
        rng.shuffle(batches)
        _pool_cache[key] = (batches, budget)
    batches, budget = _pool_cache[key]
    return batches[within], budget


@torch.no_grad()
def greedy(model, tok, enc, max_new=32, stop=None):
    """Greedy continuation without a KV cache (answers are short). Returns generated ids."""
    stop = stop or {tok.token_id("<turn|>"), tok.token_id("<|tool_response>"),
                    tok.token_id("<eos>")}
    prompt = Encoded(list(enc.ids[:enc.loss_from + 1]), enc.media, enc.loss_from, enc.task)
    out = []
    for _ in range(max_new):
        ids, soft, mask, blocks, valid, _ = collate(model, [prompt], 0)
        logits, _, _ = model(ids, soft, mask, blocks, valid)
        last = logits[0, -1].clone()
        for s in model.suppress_tokens:
            last[s] = float("-inf")
        t = int(last.argmax())
        out.append(t)
        if t in stop:
            break
        prompt.ids.append(t)
    return out


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def lr_at(frac, peak, warmup_frac=0.03, floor=0.1):
    if frac < warmup_frac:
        return peak * frac / warmup_frac
    t = min(1.0, (frac - warmup_frac) / (1 - warmup_frac))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def save_ckpt(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def build_tokenizer(args):
    """The vocabulary always comes from all tasks, whatever --tasks trains on."""
    gen = data.Generator(args.seed, "train")
    texts = []
    for i in range(args.tokenizer_examples):
        ex = gen.example(10_000_000 + i)
        texts.append(ex.prompt() + ex.target)
    return tk.train(texts, vocab_size=args.vocab or PRESETS[args.preset]["vocab"], seed=args.seed)


def cpu_has_bf16_matmul():
    """AMX or AVX-512 BF16: oneDNN then runs bf16 matrix products several times faster than
    fp32 (AMX on this machine: 3.7x per training step at nano192). Without them bf16 would be
    emulated and slower, so "auto" keeps fp32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def matmul_precision(args):
    """Mixed precision for the decoder's matrix products: weights, optimizer state, norms,
    softmax, residual stream and loss stay fp32 (the model casts them); only the products run
    in bf16 with fp32 accumulation inside oneDNN. The exported weights are fp32 either way."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")


def train_model(args, model, tok, gen, state, deadline_s, log):
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    if state.get("opt"):
        opt.load_state_dict(state["opt"])
    step = state.get("step", 0)
    used = state.get("model_seconds", 0.0)
    t_ckpt = time.time()
    pad = tok.token_id("<pad>")
    while used < deadline_s and (args.max_steps <= 0 or step < args.max_steps):
        t0 = time.time()
        batch, budget = length_bucketed_batch(args, tok, gen, step, 0)
        model.train()
        ids, soft, mask, blocks, valid, labels = collate(model, batch, pad)
        for grp in opt.param_groups:
            grp["lr"] = lr_at(used / deadline_s, args.lr)
        with matmul_precision(args):
            logits, _, _ = model(ids, soft, mask, blocks, valid)
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                               ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        dt = time.time() - t0
        used += dt
        if step % args.log_every == 0 or step == 1:
            log(f"model step {step} loss {loss.item():.4f} lr {opt.param_groups[0]['lr']:.2e} "
                f"T {ids.shape[1]} budget {budget} {dt * 1000:.0f} ms/step "
                f"({used / 60:.1f}/{deadline_s / 60:.1f} min)")
        if time.time() - t_ckpt > args.ckpt_minutes * 60:
            state.update(step=step, model_seconds=used, opt=opt.state_dict(),
                         model=model.state_dict())
            save_ckpt(os.path.join(args.out, "ckpt.pt"), state)
            t_ckpt = time.time()
    state.update(step=step, model_seconds=used, opt=None, model=model.state_dict(),
                 model_done=True)
    return step, used


def drafter_step_loss(target, drafter, ids, soft, mask, blocks, valid, k):
    """Teacher-forced distillation over every position: query at p = i + 1 reads the target's
    cache up to i; step s predicts the token at p + 1 + s, matched to the target's distribution."""
    with torch.no_grad():
        logits_t, hidden, kvs = target(ids, soft, mask, blocks, valid, return_kv=True)
        last_sliding = max(i for i, l in enumerate(target.layers) if l.sliding)
        last_full = max(i for i, l in enumerate(target.layers) if not l.sliding)
        kv_s, kv_f = kvs[last_sliding], kvs[last_full]
        probs_t = torch.softmax(logits_t.float(), dim=-1)
    B, T = ids.shape
    Q = T - 1 - k  # queries i = 0..Q-1 (p = i + 1)
    if Q <= 0:
        return None
    pos = torch.arange(1, Q + 1)[None].expand(B, Q)
    allow_s, allow_f = g.drafter_masks(T, pos, target.config.sliding_window)
    allow_s = allow_s & valid[:, None, :]
    allow_f = allow_f & valid[:, None, :]
    h = hidden[:, :Q]
    total = 0.0
    for s in range(k):
        tokens = ids[:, 1 + s:Q + 1 + s]  # step 0: the token at p; step s: the token at p + s
        dl, h = drafter(target, tokens, h, pos, kv_s, kv_f, allow_s, allow_f)
        tgt = probs_t[:, s + 1:Q + s + 1]  # target's distribution for the token at p + 1 + s
        ok = valid[:, s + 2:Q + s + 2].float()
        ce = -(tgt * torch.log_softmax(dl.float(), dim=-1)).sum(-1)
        total = total + (ce * ok).sum() / ok.sum().clamp(min=1)
    return total / k


def train_drafter(args, target, drafter, tok, gen, state, deadline_s, log):
    for p in target.parameters():
        p.requires_grad_(False)
    target.eval()
    opt = torch.optim.AdamW(drafter.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    if state.get("d_opt"):
        opt.load_state_dict(state["d_opt"])
    step = state.get("d_step", 0)
    used = state.get("drafter_seconds", 0.0)
    t_ckpt = time.time()
    pad = tok.token_id("<pad>")
    while used < deadline_s and (args.max_steps <= 0 or step < args.max_steps):
        t0 = time.time()
        batch, budget = length_bucketed_batch(args, tok, gen, step, 50_000_000)
        with torch.no_grad():
            ids, soft, mask, blocks, valid, _ = collate(target, batch, pad)
        for grp in opt.param_groups:
            grp["lr"] = lr_at(used / deadline_s, args.lr)
        with matmul_precision(args):
            loss = drafter_step_loss(target, drafter, ids, soft, mask, blocks, valid, args.draft_k)
        if loss is None:
            continue
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(drafter.parameters(), 1.0)
        opt.step()
        step += 1
        dt = time.time() - t0
        used += dt
        if step % args.log_every == 0 or step == 1:
            log(f"drafter step {step} distill-CE {loss.item():.4f} {dt * 1000:.0f} ms/step "
                f"({used / 60:.1f}/{deadline_s / 60:.1f} min)")
        if time.time() - t_ckpt > args.ckpt_minutes * 60:
            state.update(d_step=step, drafter_seconds=used, d_opt=opt.state_dict(),
                         drafter=drafter.state_dict())
            save_ckpt(os.path.join(args.out, "ckpt.pt"), state)
            t_ckpt = time.time()
    state.update(d_step=step, drafter_seconds=used, d_opt=None, drafter=drafter.state_dict(),
                 drafter_done=True)
    return step, used


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def export(args, model, drafter, tok):
    hf = os.path.join(args.out, "hf")
    os.makedirs(hf, exist_ok=True)
    ids = {"image_token_id": tok.token_id("<|image|>"), "audio_token_id": tok.token_id("<|audio|>"),
           "video_token_id": tok.token_id("<|video|>"), "boi_token_id": tok.token_id("<|image>"),
           "eoi_token_id": tok.token_id("<image|>"), "boa_token_id": tok.token_id("<|audio>"),
           "eoa_token_id": tok.token_id("<audio|>"),
           "eos_token_id": [tok.token_id("<eos>"), tok.token_id("<turn|>")]}
    cfg = model.hf_config(ids)
    cfg["_name_or_path"] = args.name
    write_json(os.path.join(hf, "config.json"), cfg)
    eos = [tok.token_id("<eos>"), tok.token_id("<turn|>"), tok.token_id("<|tool_response>")]
    write_json(os.path.join(hf, "generation_config.json"), {
        "bos_token_id": tok.token_id("<bos>"), "pad_token_id": tok.token_id("<pad>"),
        "eos_token_id": eos, "do_sample": False,
        "suppress_tokens": [tok.token_id("<audio|>"), tok.token_id("<image|>")]})
    # The image budget the model was trained at (the first of --budgets) is its default: the
    # engine reads max_soft_tokens from here (and convert keeps it as clip.vision.max_soft_tokens).
    write_json(os.path.join(hf, "processor_config.json"),
               {"image_processor": {"max_soft_tokens": args.budgets[0]}})
    tensor_io.write_safetensors(os.path.join(hf, "model.safetensors"), model.hf_state_dict(),
                                {"format": "pt"})
    tok.save_hf(hf, chat.default_chat_template())
    out = {"hf": hf}
    if drafter is not None:
        ad = os.path.join(args.out, "hf-assistant")
        os.makedirs(ad, exist_ok=True)
        dc = drafter.hf_config()
        dc["_name_or_path"] = args.name + "-assistant"
        write_json(os.path.join(ad, "config.json"), dc)
        tensor_io.write_safetensors(os.path.join(ad, "model.safetensors"), drafter.hf_state_dict(),
                                    {"format": "pt"})
        tok.save_hf(ad)
        out["assistant"] = ad
    return out


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def convert(args, paths, log):
    gg = os.path.join(args.out, "gguf")
    os.makedirs(gg, exist_ok=True)
    files = {}
    text = os.path.join(gg, f"{args.name}-{args.gguf_type}.gguf")
    cmd = [args.unigemma, "convert", paths["hf"], "-o", text, "--type", args.gguf_type,
           "--name", args.name]
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True)
    files["model"] = text
    files["mmproj"] = os.path.join(gg, f"mmproj-{args.name}-{args.gguf_type}.gguf")
    if "assistant" in paths:
        asst = os.path.join(gg, f"{args.name}-assistant-{args.gguf_type}.gguf")
        cmd = [args.unigemma, "convert", paths["assistant"], "-o", asst, "--type", args.gguf_type,
               "--name", args.name + "-assistant"]
        log("$ " + " ".join(cmd))
        subprocess.run(cmd, check=True)
        files["assistant"] = asst
        # The shipped form: one bundle GGUF with the text model, projector and drafter.
        bundle = os.path.join(gg, f"{args.name}.gguf")
        cmd = [args.unigemma, "convert", paths["hf"], "-o", bundle, "--type", args.bundle_type,
               "--name", args.name, "--bundle", "--assistant", paths["assistant"]]
        log("$ " + " ".join(cmd))
        subprocess.run(cmd, check=True)
        files["bundle"] = bundle
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="nano192", choices=sorted(PRESETS))
    ap.add_argument("--name", default="unigemma-nano")
    ap.add_argument("--minutes", type=float, default=90.0, help="total training wall-clock budget")
    ap.add_argument("--drafter-share", type=float, default=0.1)
    ap.add_argument("--max-steps", type=int, default=0, help="cap per phase (0: time only)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--budgets", default="70", help="image soft-token budgets to sample, e.g. 70,280")
    ap.add_argument("--tasks", help="comma list of tasks (default: all, data.ALL_TASKS)")
    ap.add_argument("--task-weights", help="comma list of sampling weights for --tasks")
    ap.add_argument("--multi-question", type=float, default=0.7,
                    help="share of shape/colour/size/position examples asked as 2-4 questions "
                         "about one image")
    ap.add_argument("--pos-init", type=float, default=1.0,
                    help="std of the vision x/y position rows at initialisation")
    ap.add_argument("--bucket", type=int, default=4, help="batches per length-sorted pool")
    ap.add_argument("--vocab", type=int, default=0)
    ap.add_argument("--tokenizer-examples", type=int, default=4000)
    ap.add_argument("--draft-k", type=int, default=3)
    ap.add_argument("--ckpt-minutes", type=float, default=10.0)
    ap.add_argument("--log-every", type=int, default=10)
    ap.add_argument("--unigemma", help="path of the unigemma binary: convert the export to GGUF")
    ap.add_argument("--gguf-type", default="f32")
    ap.add_argument("--bundle-type", default="q8_0",
                    help="tensor type of the one-file bundle OUT/gguf/NAME.gguf (the shipped form)")
    ap.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                    help="matrix products in training: bf16 (mixed precision, fp32 master "
                         "weights) or fp32; auto = bf16 when the CPU has AMX/AVX-512 BF16")
    args = ap.parse_args()
    if args.precision == "auto":
        args.precision = "bf16" if cpu_has_bf16_matmul() else "fp32"
    args.budgets = [int(b) for b in args.budgets.split(",")]
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    logf = open(os.path.join(args.out, "train.log"), "a", encoding="utf-8")

    def log(msg):
        line = time.strftime("%H:%M:%S ") + msg
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    p = PRESETS[args.preset]
    tasks = args.tasks.split(",") if args.tasks else None
    weights = [float(w) for w in args.task_weights.split(",")] if args.task_weights else None
    if tasks is None and weights is None:
        tasks = list(data.ALL_TASKS)
        weights = [float(RECIPE_TASK_WEIGHTS[t]) for t in tasks]
    if tasks and weights and len(tasks) != len(weights):
        raise SystemExit("--task-weights needs one weight per task in --tasks")
    gen = data.Generator(args.seed, "train", tasks=tasks, weights=weights,
                         multi_question=args.multi_question)
    ckpt = os.path.join(args.out, "ckpt.pt")
    tok_dir = os.path.join(args.out, "tokenizer")
    if os.path.exists(os.path.join(tok_dir, "tokenizer.json")):
        tok = tk.Tokenizer.load_hf(tok_dir)
        log(f"tokenizer: loaded {len(tok)} tokens from {tok_dir}")
    else:
        t0 = time.time()
        tok = build_tokenizer(args)
        tok.save_hf(tok_dir, chat.default_chat_template())
        log(f"tokenizer: {len(tok)} tokens, {len(tok.merges)} merges ({time.time() - t0:.1f} s)")

    tc = text_config(p)
    tc.vocab_size = len(tok)
    model = g.Gemma4Unified(tc, g.MMConfig(vision=True, audio=True, mm_embed_dim=p["mm_dim"]))
    model.suppress_tokens = [tok.token_id("<audio|>"), tok.token_id("<image|>")]
    drafter = g.Gemma4Assistant(drafter_config(p, tc))
    state = {}
    if os.path.exists(ckpt):
        state = torch.load(ckpt)
        model.load_state_dict(state["model"])
        if state.get("drafter"):
            drafter.load_state_dict(state["drafter"])
        log(f"resumed from {ckpt}: model step {state.get('step', 0)}, "
            f"drafter step {state.get('d_step', 0)}")
    else:
        init_weights(model, args.seed, args.pos_init)
        init_weights(drafter, args.seed + 1)
        state = {"args": vars(args)}
    n_params = sum(x.numel() for x in model.parameters())
    d_params = sum(x.numel() for x in drafter.parameters())
    log(f"model {args.preset}: {n_params / 1e6:.2f} M parameters; drafter {d_params / 1e6:.2f} M; "
        f"{args.threads} thread(s), {args.precision} matrix products")

    total = args.minutes * 60
    if not state.get("model_done"):
        steps, used = train_model(args, model, tok, gen, state, total * (1 - args.drafter_share), log)
        log(f"model: {steps} steps in {used / 60:.1f} min ({steps / max(used, 1e-9):.2f} steps/s)")
        save_ckpt(ckpt, state)
    if not state.get("drafter_done"):
        steps, used = train_drafter(args, model, drafter, tok, gen, state,
                                    total * args.drafter_share, log)
        log(f"drafter: {steps} steps in {used / 60:.1f} min")
        save_ckpt(ckpt, state)
    paths = export(args, model, drafter, tok)
    log(f"exported {paths}")
    if args.unigemma:
        files = convert(args, paths, log)
        log(f"gguf: {files}")


if __name__ == "__main__":
    main()
