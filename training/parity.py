"""PyTorch model vs the C++ engine on the same prompts (text, image, audio): last-position logits
and final hidden states.

The PyTorch side writes the prompts in the oracle pack's multimodal case format
(mm/<case>/layout_and_logits.json + reference .bin files, README-multimodal §4) into a scratch
folder, with the exported projector where that format expects it, and the engine's own
`unigemma check-oracle` runs them: it embeds the media itself (image budget 70), re-assembles the
prompt from the text (so the ids the Python tokenizer produced are checked too) and compares.

  /usr/bin/python3 training/parity.py --hf runs/nano/hf --gguf runs/nano/gguf/unigemma-nano-f32.gguf \\
      --mmproj runs/nano/gguf/mmproj-unigemma-nano-f32.gguf --unigemma build/release/unigemma
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402

import data  # noqa: E402
import gemma4_torch as g  # noqa: E402
import tokenizer as tk  # noqa: E402
import train  # noqa: E402

BUDGET = 70  # what check-oracle's mixed-prompt runner uses


def build_cases(args, model, tok, root):
    gen = data.Generator(args.seed, "heldout")
    cases = {}
    wanted = [("text_arith", "arithmetic"), ("text_tool", "tool_call"), ("image_shape", "shape"),
              ("image_count", "count"), ("audio_tone", "beep_count"),
              ("audio_speech", "spoken_digit")]
    media_dir = os.path.join(root, "media")
    os.makedirs(media_dir, exist_ok=True)
    for name, task in wanted:
        ex = gen.example(0, task)
        # Media go through files, as the engine reads them: PNG, PCM16 WAV at 16 kHz.
        files = []
        items = []
        for k, (kind, payload) in enumerate(ex.media):
            if kind == "image":
                path = os.path.join(media_dir, f"{name}_{k}.png")
                payload.save(path)
                from PIL import Image
                items.append(("image", Image.open(path)))
            else:
                path = os.path.join(media_dir, f"{name}_{k}.wav")
                data.write_wav(path, payload)
                items.append(("audio", g.read_wav(path)[0]))
            files.append(os.path.relpath(path, root))
        rendered = ex.prompt()
        ids, media = train.encode_prompt(tok, rendered, items, BUDGET)
        enc = train.Encoded(ids, media, len(ids) - 1, task)
        with torch.no_grad():
            inp = train.collate(model, [enc], tok.token_id("<pad>"))
            logits, hidden, _ = model(*inp[:5])
        d = os.path.join(root, "mm", name)
        os.makedirs(d, exist_ok=True)
        logits[0, -1].numpy().astype("<f4").tofile(os.path.join(d, "logits_last_hf_f32.bin"))
        hidden[0].numpy().astype("<f4").tofile(os.path.join(d, "hidden_final_norm_hf_f32.bin"))
        segments = []
        for k, (kind, start, payload) in enumerate(media):
            n = payload[0].shape[0] if kind == "image" else payload.shape[0]
            segments.append({"type": kind, "start": start, "n_tokens": n, "file": files[k]})
        text = rendered[len("<bos>"):]
        text = text.replace("<|image|>", "\n\n<__media__>\n\n").replace("<|audio|>", "<__media__>")
        with open(os.path.join(d, "layout_and_logits.json"), "w", encoding="utf-8") as f:
            json.dump({"ids": ids, "segments": segments, "prompt_text": text,
                       "n_positions": len(ids)}, f)
        cases[name] = {}
    with open(os.path.join(root, "mm", "mm_summary.json"), "w") as f:
        json.dump({"prompts": cases}, f)


def _pick(logits, suppress):
    z = logits.clone()
    for s in suppress:
        z[s] = float("-inf")
    return int(z.argmax())


def _target(model, ids):
    with torch.no_grad():
        logits, hidden, kvs = model(torch.tensor([ids]), return_kv=True)
    return logits[0], hidden[0], kvs


def _draft(model, drafter, kvs, n_keys, token, h, k=4):
    """k greedy draft steps at position p = n_keys over the target KV of positions < p."""
    last_s = max(i for i, l in enumerate(model.layers) if l.sliding)
    last_f = max(i for i, l in enumerate(model.layers) if not l.sliding)
    kv_s = tuple(x[:, :n_keys] for x in kvs[last_s])
    kv_f = tuple(x[:, :n_keys] for x in kvs[last_f])
    pos = torch.tensor([[n_keys]])
    a_s, a_f = g.drafter_masks(n_keys, pos, model.config.sliding_window)
    steps = []
    x = token
    with torch.no_grad():
        for s in range(k):
            e = model.embed_text(torch.tensor([[x]]))[0, 0]
            dl, h_next = drafter(model, torch.tensor([[x]]), h[None, None], pos, kv_s, kv_f, a_s,
                                 a_f)
            steps.append({"input_token": x, "xh": torch.cat([e, h]), "logits": dl[0, 0],
                          "h_next": h_next[0, 0]})
            x = int(dl[0, 0].argmax())
            h = h_next[0, 0]
    return steps, [int(st["logits"].argmax()) for st in steps]


def build_mtp_case(model, drafter, tok, root, name, prompt, n_gen=48):
    """One case in the oracle's MTP format (README-mtp §2), computed by the PyTorch model."""
    d = os.path.join(root, "mtp", "nano", name)
    os.makedirs(d, exist_ok=True)
    w = lambda t, f: t.detach().numpy().astype("<f4").tofile(os.path.join(d, f))  # noqa: E731
    sup = model.suppress_tokens
    N = len(prompt)
    logits, hidden, kvs = _target(model, prompt)
    t = _pick(logits[-1], sup)
    w(logits[-1], "target_logits_last.f32.bin")
    w(hidden[-1], "target_h_last.f32.bin")
    w(hidden, "target_h_nextn.f32.bin")
    for layer in (max(i for i, l in enumerate(model.layers) if l.sliding),
                  max(i for i, l in enumerate(model.layers) if not l.sliding)):
        w(kvs[layer][0][0], f"target_Kcur_pos_{layer}.f32.bin")
        w(kvs[layer][1][0], f"target_Vcur_normed_{layer}.f32.bin")
    steps, drafts = _draft(model, drafter, kvs, N, t, hidden[-1])
    step_json = []
    for s, st in enumerate(steps):
        w(st["xh"], f"step{s}_inp_xh.f32.bin")
        w(st["logits"], f"step{s}_result_output.f32.bin")
        w(st["h_next"], f"step{s}_h_nextn.f32.bin")
        step_json.append({"step": s, "input_token": st["input_token"], "position": N,
                          "argmax": int(st["logits"].argmax())})
    # Plain greedy, stopping after an end-of-generation token.
    stop = {tok.token_id("<eos>"), tok.token_id("<turn|>"), tok.token_id("<|tool_response>")}
    seq = list(prompt)
    greedy, margins = [], []
    for _ in range(n_gen):
        lg, _, _ = _target(model, seq)
        z = lg[-1].clone()
        z[sup] = float("-inf")
        top = torch.topk(z, 2).values
        margins.append(float(top[0] - top[1]))
        x = int(z.argmax())
        greedy.append(x)
        seq.append(x)
        if x in stop:
            break
    below = next((i for i, m in enumerate(margins) if m < 0.01), None)
    # Speculative rounds with llama.cpp's structure (last prompt token held back), k = 4.
    ctx = list(prompt[:-1])
    id_last = prompt[-1]
    _, hid, _ = _target(model, ctx)
    h = hid[-1]
    rounds, emitted = [], []
    while len(emitted) < n_gen:
        n_past = len(ctx)
        _, _, kv_ctx = _target(model, ctx + [id_last])
        _, dr = _draft(model, drafter, kv_ctx, n_past, id_last, h)
        lg, hid, _ = _target(model, ctx + [id_last] + dr)
        picks = [_pick(lg[n_past + j], sup) for j in range(len(dr) + 1)]
        j = 0
        while j < len(dr) and dr[j] == picks[j]:
            j += 1
        out = dr[:j] + [picks[j]]
        rounds.append({"n_past": n_past, "id_last": id_last, "draft": dr, "target_ids": out,
                       "n_accepted": j})
        emitted += out
        ctx = ctx + [id_last] + dr[:j]
        id_last = picks[j]
        h = hid[n_past + j]
    case = {"set": "nano", "model": "nano", "case": name,
            "target_gguf": "shared/oracle/model.gguf", "assistant_gguf": "shared/oracle/assistant.gguf",
            "prompt_tokens": list(prompt), "n_prompt": N, "target": {"t": t},
            "draft": {"k": 4, "llamacpp_draft_tokens": drafts, "steps": step_json},
            "greedy": {"tokens": greedy, "first_index_margin_below": {"0.01": below}},
            "speculative": {"rounds": rounds}}
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump(case, f)
    return os.path.join(d, "case.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hf", required=True)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--mmproj", required=True)
    ap.add_argument("--unigemma", required=True)
    ap.add_argument("--draft", help="drafter GGUF; with --hf-draft also checks MTP drafting")
    ap.add_argument("--hf-draft", help="the drafter's HF folder (PyTorch side)")
    ap.add_argument("--work", default="/tmp/unigemma-nano-parity")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = g.load_hf_model(args.hf)
    tok = tk.Tokenizer.load_hf(args.hf)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(os.path.join(args.work, "models"))
    os.makedirs(os.path.join(args.work, "mm", "model"))
    shutil.copy(args.mmproj, os.path.join(args.work, "mm", "model", "mmproj-gemma4-tiny-a-f32.gguf"))
    build_cases(args, model, tok, args.work)
    cmd = [args.unigemma, "check-oracle", os.path.join(args.work, "mm", "mm_summary.json"),
           "--model", args.gguf, "--cache-type", "f32", "-t", "1"]
    print("$ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    print(r.stdout + r.stderr)
    worst = 0.0
    for m in re.finditer(r"logits max ([0-9.e+-]+)", r.stdout):
        worst = max(worst, float(m.group(1)))
    print(f"worst last-position logits max |diff| PyTorch vs engine: {worst:.3e}")
    ok = "ids equal" in r.stdout and "DIFFER" not in r.stdout and "FAIL" not in r.stdout
    if args.draft and args.hf_draft:
        drafter = g.load_hf_drafter(args.hf_draft)
        shutil.copy(args.gguf, os.path.join(args.work, "model.gguf"))
        shutil.copy(args.draft, os.path.join(args.work, "assistant.gguf"))
        gen = data.Generator(args.seed, "heldout")
        for name, task in (("p_arith", "arithmetic"), ("p_tool", "tool_call")):
            ex = gen.example(1, task)
            ids, _ = train.encode_prompt(tok, ex.prompt(), ex.media, BUDGET)
            case = build_mtp_case(model, drafter, tok, args.work, name, ids)
            cmd = [args.unigemma, "check-oracle", case, "-t", "1"]
            print("$ " + " ".join(cmd), flush=True)
            r = subprocess.run(cmd, capture_output=True, text=True)
            print(r.stdout + r.stderr)
            ok = ok and "FAIL" not in r.stdout and r.returncode == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
