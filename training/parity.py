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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hf", required=True)
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--mmproj", required=True)
    ap.add_argument("--unigemma", required=True)
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
    return 0 if "ids equal" in r.stdout and "DIFFER" not in r.stdout else 1


if __name__ == "__main__":
    sys.exit(main())
