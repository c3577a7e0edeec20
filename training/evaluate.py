"""Held-out accuracy per task of an exported model, computed with the PyTorch implementation
(greedy, the same stop tokens and suppressed tokens as the engine), and with --engine also through
the C++ engine (`unigemma run --json`) on the same examples.

  /usr/bin/python3 training/evaluate.py --hf runs/nano/hf --n 20 [--tasks shape,count] [--json OUT]
  /usr/bin/python3 training/evaluate.py --hf runs/nano/hf --n 20 --engine build/release/unigemma \
      --gguf runs/nano/gguf/unigemma-nano-f32.gguf --mmproj runs/nano/gguf/mmproj-unigemma-nano-f32.gguf

With --engine only what `unigemma run` can express is used: one user turn, media before the text,
no system prompt, no tools (so the tool tasks need the server or `unigemma eval`).

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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = g.load_hf_model(args.hf)
    tok = tk.Tokenizer.load_hf(args.hf)
    t0 = time.time()
    tasks = args.tasks.split(",")
    if args.engine:
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
