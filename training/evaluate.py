"""Held-out accuracy per task of an exported model, computed with the PyTorch implementation
(greedy, the same stop tokens and suppressed tokens as the engine), and with --engine also through
the C++ engine on the same examples.

  /usr/bin/python3 training/evaluate.py --hf runs/nano/hf --n 20 [--tasks shape,count] [--json OUT]

  # the eval set `unigemma eval` reads: examples, media files and the PyTorch outputs
  /usr/bin/python3 training/evaluate.py --hf runs/nano/hf --n 100 --dump-set /tmp/nano-eval \
      [--engine build/release/unigemma --gguf runs/nano/gguf/unigemma-nano.gguf]
  build/release/unigemma eval -m runs/nano/gguf/unigemma-nano.gguf /tmp/nano-eval

With --dump-set, every task (tool tasks included) goes through `unigemma eval`, which renders each
conversation with the model's chat template itself; with --engine it is run on the set and the two
accuracies are printed side by side. The older --engine mode without --dump-set uses
`unigemma run` per example, so only what `run` can express: one user turn, media before the text,
no system prompt, no tools.

The held-out split (data.Generator(seed, "heldout")) never produces a training example.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import data  # noqa: E402
import gemma4_torch as g  # noqa: E402
import tokenizer as tk  # noqa: E402
import train  # noqa: E402


def engine_expressible(ex):
    if ex.tools or len(ex.messages) != 1:
        return False
    c = ex.messages[0]["content"]
    return isinstance(c, str) or (len(c) == 2 and c[0]["type"] in ("image", "audio"))


def engine_answer(args, ex, tmp):
    cmd = [args.engine, "run", "-m", args.gguf, "--draft", "none", "--temp", "0", "-n", "48",
           "-t", "1", "--json", "--image-tokens", str(args.budget)]
    if args.mmproj:
        cmd += ["--mmproj", args.mmproj]
    if ex.thinking:
        cmd += ["--think", "on"]
    c = ex.messages[0]["content"]
    text = c if isinstance(c, str) else c[1]["text"]
    for kind, payload in ex.media:
        path = os.path.join(tmp, "media." + ("png" if kind == "image" else "wav"))
        if kind == "image":
            payload.save(path)
        else:
            data.write_wav(path, payload)
        cmd += ["--" + kind, path]
    r = subprocess.run(cmd + ["-p", text], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return json.loads(r.stdout)["content"]


def evaluate_with_engine(args, model, tok, tasks, log=print):
    gen = data.Generator(args.seed, "heldout")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            ok_t = ok_e = same = n = 0
            i = 0
            while n < args.n and i < 50 * args.n:
                ex = gen.example(i, task)
                i += 1
                if not engine_expressible(ex):
                    continue
                # The engine reads media from files: evaluate both on the decoded file content.
                if ex.media and ex.media[0][0] == "audio":
                    path = os.path.join(tmp, "a.wav")
                    data.write_wav(path, ex.media[0][1])
                    ex.media = [("audio", g.read_wav(path)[0])]
                enc = train.encode_example(tok, ex, args.budget)
                torch_text = tok.decode(train.greedy(model, tok, enc, max_new=48))
                torch_content = data.normalize(torch_text)
                eng = engine_answer(args, ex, tmp)
                ok_t += data.check_answer(ex, torch_text)
                ok_e += data.check_answer(ex, eng)
                same += torch_content == data.normalize(eng)
                n += 1
            results[task] = {"n": n, "torch": ok_t / max(n, 1), "engine": ok_e / max(n, 1),
                             "same_output": same / max(n, 1)}
            log(f"{task:14s} torch {100 * ok_t / max(n, 1):5.1f}%  engine "
                f"{100 * ok_e / max(n, 1):5.1f}%  same output {same}/{n}")
    return results


def evaluate(model, tok, tasks, n, seed=0, budget=70, log=print):
    gen = data.Generator(seed, "heldout")
    results = {}
    for task in tasks:
        ok = 0
        for i in range(n):
            ex = gen.example(i, task)
            enc = train.encode_example(tok, ex, budget)
            out = train.greedy(model, tok, enc, max_new=48)
            text = tok.decode(out)
            ok += data.check_answer(ex, text)
        results[task] = ok / n
        log(f"{task:14s} {100 * ok / n:5.1f}%  ({ok}/{n})")
    return results


def media_files_into_parts(ex, names):
    """The example's messages with media parts naming their files, in order."""
    it = iter(names)
    messages = json.loads(json.dumps(ex.messages))
    for m in messages:
        if isinstance(m.get("content"), list):
            for part in m["content"]:
                if part.get("type") in ("image", "audio"):
                    part["file"] = next(it)
    return messages


def dump_set(args, model, tok, tasks, log=print):
    """Writes DIR/examples.jsonl + media files: n held-out examples per task with the PyTorch
    model's greedy output ("reference", stop token removed). Media are written first and read back,
    so both implementations see the file contents (16-bit WAV, lossless PNG)."""
    gen = data.Generator(args.seed, "heldout")
    os.makedirs(args.dump_set, exist_ok=True)
    stops = {tok.token_id("<turn|>"), tok.token_id("<|tool_response>"), tok.token_id("<eos>")}
    results = {}
    lines = []
    for task in tasks:
        ok = 0
        for i in range(args.n):
            ex = gen.example(i, task)
            names = []
            for k, (kind, payload) in enumerate(ex.media):
                name = f"{task}_{i:04d}_{k}.{'png' if kind == 'image' else 'wav'}"
                path = os.path.join(args.dump_set, name)
                if kind == "image":
                    payload.save(path)
                    ex.media[k] = ("image", Image.open(path).convert("RGB"))
                else:
                    data.write_wav(path, payload)
                    ex.media[k] = ("audio", g.read_wav(path)[0])
                names.append(name)
            enc = train.encode_example(tok, ex, args.budget)
            out = train.greedy(model, tok, enc, max_new=48)
            if out and out[-1] in stops:
                out = out[:-1]
            text = tok.decode(out)
            ok += data.check_answer(ex, text)
            lines.append(json.dumps({"index": i, "task": task,
                                     "messages": media_files_into_parts(ex, names),
                                     "tools": ex.tools, "thinking": ex.thinking,
                                     "answer": ex.answer, "reference": text},
                                    ensure_ascii=False))
        results[task] = ok / args.n
        log(f"{task:14s} torch {100 * ok / args.n:5.1f}%  ({ok}/{args.n})")
    with open(os.path.join(args.dump_set, "examples.jsonl"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return results


def engine_eval(args, torch_results, log=print):
    """`unigemma eval` on the dumped set; per task engine vs PyTorch accuracy and the gap."""
    out_json = os.path.join(args.dump_set, "engine-eval.json")
    cmd = [args.engine, "eval", args.dump_set, "--json", out_json, "-t", str(args.threads),
           "--cache-type", "f32"]
    if args.gguf:
        cmd += ["-m", args.gguf]
    if args.mmproj:
        cmd += ["--mmproj", args.mmproj]
    log("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(out_json, encoding="utf-8") as f:
        eng = json.load(f)["tasks"]
    worst = 0.0
    log(f"{'task':14s} {'torch':>7s} {'engine':>7s} {'gap':>6s} same")
    for task, t in eng.items():
        gap = 100 * (t["accuracy"] - t["reference_accuracy"])
        worst = max(worst, abs(gap))
        log(f"{task:14s} {100 * t['reference_accuracy']:6.1f}% {100 * t['accuracy']:6.1f}% "
            f"{gap:+5.1f} {t['same_as_reference']}/{t['n']}")
    log(f"largest gap {worst:.1f} points")
    return eng


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hf", required=True)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--tasks", default=",".join(data.ALL_TASKS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=int, default=70)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    ap.add_argument("--engine", help="unigemma binary: also run the examples through the engine")
    ap.add_argument("--gguf")
    ap.add_argument("--mmproj")
    ap.add_argument("--dump-set", help="write the eval set (examples, media, PyTorch outputs) here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = g.load_hf_model(args.hf)
    tok = tk.Tokenizer.load_hf(args.hf)
    t0 = time.time()
    tasks = args.tasks.split(",")
    if args.dump_set:
        res = {"torch": dump_set(args, model, tok, tasks)}
        if args.engine:
            res["engine"] = engine_eval(args, res["torch"])
    elif args.engine:
        tasks = [t for t in tasks if t not in ("tool_call", "tool_answer", "no_tool")]
        res = evaluate_with_engine(args, model, tok, tasks)
    else:
        res = evaluate(model, tok, tasks, args.n, args.seed, args.budget)
    print(f"({time.time() - t0:.0f} s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
